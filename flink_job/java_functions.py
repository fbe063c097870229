"""The job's Java DataStream functions (``jvm/udfs``, package ``io.github.mmon.flink``) on PyFlink streams.

PyFlink has no public way to apply a Java function to a stream, so these go through the stream's Java
handle (``DataStream._j_data_stream``); the pinned PyFlink keeps it stable and the job tests cover it.
Rows stay in the JVM: no Python call per record.
"""
from __future__ import annotations

from typing import Mapping

from pyflink.common.typeinfo import TypeInformation
from pyflink.datastream import DataStream
from pyflink.java_gateway import get_gateway


def package():
    """The Java package of the job's functions, through the gateway."""
    return get_gateway().jvm.io.github.mmon.flink


def java_map(values: Mapping[str, str]):
    """A ``java.util.HashMap`` of ``values``."""
    result = get_gateway().jvm.java.util.HashMap()
    for key, value in values.items():
        result.put(key, value)
    return result


def mapped(stream: DataStream, function, output_type: TypeInformation, name: str) -> DataStream:
    """``stream`` through the Java MapFunction ``function``, with rows of ``output_type``."""
    j_stream = stream._j_data_stream.map(function).returns(output_type.get_java_type_info())
    return DataStream(j_stream.name(name))


def filtered(stream: DataStream, function, name: str) -> DataStream:
    """``stream`` through the Java FilterFunction ``function``."""
    return DataStream(stream._j_data_stream.filter(function).name(name))
