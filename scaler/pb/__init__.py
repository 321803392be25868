"""Generated protobuf and gRPC code. Do not edit: `make proto` regenerates it from proto/."""
