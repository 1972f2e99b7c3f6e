"""The gRPC edge: servicers and protobuf <-> domain conversion. Only this
package imports generated protobuf code on the coordinator side."""
