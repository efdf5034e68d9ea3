"""The HTTP/JSON gateway: SpiceDB's grpc-gateway routes over the same servicers."""
