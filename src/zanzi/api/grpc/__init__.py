"""The gRPC server: authzed.api.v1 servicers over the service, status mapping, interceptors."""
