"""The job's Java DataStream functions (``jvm/udfs``, package ``io.github.mmon.flink``) on PyFlink streams.

PyFlink has no public way to apply a Java function to a stream, so these go through the stream's Java
handle (``DataStream._j_data_stream``); the pinned PyFlink keeps it stable and the job tests cover it.
Rows stay in the JVM: no Python call per record.
"""
from __future__ import annotations

from typing import Mapping

from pyflink.common.typeinfo import TypeInformation, Types
from pyflink.datastream import DataStream, KeyedStream
from pyflink.java_gateway import get_gateway
from py4j.java_collections import JavaArray


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


def _array(java_type: str, values, convert) -> JavaArray:
    """A Java array of the primitive or class ``java_type`` (a name under ``gateway.jvm``) of ``values``."""
    gateway = get_gateway()
    array = gateway.new_array(getattr(gateway.jvm, java_type), len(values))
    for i, value in enumerate(values):
        array[i] = convert(value)
    return array


def string_array(values) -> JavaArray:
    """A Java ``String[]`` of ``values``."""
    return _array("String", values, str)


def int_array(values) -> JavaArray:
    """A Java ``int[]`` of ``values``."""
    return _array("int", values, int)


def boolean_array(values) -> JavaArray:
    """A Java ``boolean[]`` of ``values``."""
    return _array("boolean", values, bool)


def double_matrix(rows) -> JavaArray:
    """A Java ``double[][]`` of equally long ``rows``."""
    gateway = get_gateway()
    width = len(rows[0]) if len(rows) else 0
    matrix = gateway.new_array(gateway.jvm.double, len(rows), width)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            matrix[i][j] = float(value)
    return matrix


def transformed(stream: DataStream, operator, output_type: TypeInformation, name: str, uid: str) -> DataStream:
    """``stream`` through the Java one-input stream operator ``operator``, whose state is found by ``uid``."""
    return DataStream(stream._j_data_stream.transform(name, output_type.get_java_type_info(), operator).uid(uid))


def transformed_alike(stream: DataStream, operator, name: str, uid: str) -> DataStream:
    """``stream`` through the Java one-input stream operator ``operator``, rows of the same type out (a type made by
    the SQL planner, which has no Python twin); its state is found by ``uid``."""
    j_stream = stream._j_data_stream
    return DataStream(j_stream.transform(name, j_stream.getType(), operator).uid(uid))


def keyed_transformed(stream: DataStream, j_key_selector, operator, name: str, uid: str,
                      partitioned: bool = False) -> DataStream:
    """``stream`` keyed in the JVM by ``j_key_selector`` (a Java ``KeySelector`` of a string key) through the
    Java keyed one-input operator ``operator``, rows of the same type out; its state is found by ``uid``.
    ``partitioned``: ``stream`` already is, by the same key (a keyed operator's output): it is reinterpreted as
    keyed, without an exchange, and the operator chains to the one before."""
    j_stream = stream._j_data_stream
    j_string = Types.STRING().get_java_type_info()
    if partitioned:
        utils = get_gateway().jvm.org.apache.flink.streaming.api.datastream.DataStreamUtils
        keyed_stream = utils.reinterpretAsKeyedStream(j_stream, j_key_selector, j_string)
    else:
        keyed_stream = j_stream.keyBy(j_key_selector, j_string)
    return DataStream(keyed_stream.transform(name, j_stream.getType(), operator).uid(uid))


def side_output(stream: DataStream, j_tag) -> DataStream:
    """The side output of ``stream``'s Java operator tagged ``j_tag`` (a Java ``OutputTag``)."""
    return DataStream(stream._j_data_stream.getSideOutput(j_tag))


def keyed(pairs: DataStream, key_type: TypeInformation, value_type: TypeInformation) -> KeyedStream:
    """PyFlink's keyed stream of the values of ``pairs``, rows ``(key, value)`` made by a Java operator: the
    form `DataStream.key_by` builds with a Python key selector (a Python operator in front of the keyed
    one), here without that Python hop; Flink keys on ``Row(key)``, as PyFlink's ``KeyByKeySelector`` does."""
    j_keyed = pairs._j_data_stream.keyBy(get_gateway().jvm.KeyByKeySelector(), Types.ROW([key_type]).get_java_type_info())
    return KeyedStream(j_keyed, value_type, pairs)


def subtask_of_key(key: int, max_parallelism: int, parallelism: int) -> int:
    """The subtask that Flink sends ``Row(key)`` to (``KeyGroupRangeAssignment``, the runtime's own rule)."""
    gateway = get_gateway()
    row = gateway.jvm.org.apache.flink.types.Row(1)
    row.setField(0, int(key))
    return gateway.jvm.org.apache.flink.runtime.state.KeyGroupRangeAssignment.assignKeyToParallelOperator(
        row, max_parallelism, parallelism)
