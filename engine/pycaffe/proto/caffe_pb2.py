"""``caffe.proto.caffe_pb2``: the very module ``engine.proto.caffe_pb2`` (one set of
message classes, so messages pass between pycaffe code and the engine)."""
import sys

from ...proto import caffe_pb2 as _engine_caffe_pb2

sys.modules[__name__] = _engine_caffe_pb2
