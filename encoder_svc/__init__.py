"""The encoder: a ResNet trained on the taxonomy's leaves, exported to ONNX, served over gRPC."""
