"""`helios` command line: one sub-command per module, each adding its own parser."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .config.settings import ConfigError, load_settings
from .tools import cmd_backtest, cmd_detect, cmd_simulate, cmd_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="helios", description="Predictive KEDA external scaler")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC scaler and the /metrics endpoint")
    serve.add_argument("--config", metavar="FILE", help="YAML configuration (sections: server, metrics, models)")
    serve.add_argument("--grpc-port", type=int, metavar="N", help="gRPC port (default 6000)")
    serve.add_argument("--metrics-port", type=int, metavar="N", help="Prometheus /metrics port (default 8080)")
    serve.set_defaults(run=_serve)
    for command in _COMMANDS:
        command.register(commands)
    args = parser.parse_args(argv)
    return args.run(args)


def _serve(args: argparse.Namespace) -> int:
    server = {k: v for k, v in (("grpc_port", args.grpc_port), ("metrics_port", args.metrics_port)) if v is not None}
    try:
        settings = load_settings(args.config, **({"server": server} if server else {}))
    except ConfigError as e:
        print(f"helios: {e}", file=sys.stderr)
        return 2

    from .app import serve
    from .config import logs

    logs.configure(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


# Sub-commands beside `serve`: modules with register(subparsers), which set_defaults(run=...).
_COMMANDS: list = [cmd_backtest, cmd_train, cmd_detect, cmd_simulate]


if __name__ == "__main__":
    sys.exit(main())
