"""``caffe.proto``: the engine's Caffe protobuf module, as ``caffe.proto.caffe_pb2``."""
from ...proto import caffe_pb2

__all__ = ["caffe_pb2"]
