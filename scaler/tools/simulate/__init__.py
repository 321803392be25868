"""`helios simulate`: replay a demand trace through KEDA, the HPA and pods that take time to start."""
