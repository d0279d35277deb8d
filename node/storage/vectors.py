"""Vectors as Qdrant has them: a collection's dense and sparse vector config, a point's vectors parsed and
checked against it, and vectors written back out the way Qdrant prints them.

A collection has named dense vectors (`"vectors": {"a": {"size", "distance"}, ...}`, or one unnamed vector
`"vectors": {"size", "distance"}`, which is the name "") and named sparse vectors (`"sparse_vectors":
{"text": {}}`). A point may hold any of them (none at all is allowed too). The store keeps a point's vectors
in canonical form (`node.protocol.vectors_canonical`): float32 bytes per dense vector, `[u32 indices, f32
values]` per sparse vector, sorted by index. Values come back as Qdrant prints its float32s: the shortest
decimal that reads back as the same float32 (`0.15`, not `0.15000000596046448`).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

from node.errors import BadInput, FormatError, ValidationError
from node.protocol import Vectors, sparse_pack, sparse_unpack, vector_pack

DISTANCES = ("Cosine", "Euclid", "Dot", "Manhattan")
DENSE_OPTIONAL = ("on_disk", "hnsw_config", "quantization_config", "multivector_config", "datatype")
SPARSE_MODIFIERS = ("none", "idf")
SPARSE_DATATYPES = ("float32", "float16", "uint8")
SIZE_MAX = 65536
U32_MAX = (1 << 32) - 1
_F32 = struct.Struct("<f")
F32_NORMAL_MIN = 1.1754943508222875e-38
INFINITY = float("inf")
NUMBER_TYPES = {int, float}


@dataclass(frozen=True)
class DenseParams:
    size: int
    distance: str


@dataclass(frozen=True)
class VectorSpec:
    """A collection's vectors, parsed once from its config: dense by name ("" is the unnamed vector) and
    sparse by name (with its modifier)."""
    dense: dict[str, DenseParams]
    sparse: dict[str, str | None]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> VectorSpec:
        vectors = config.get("vectors") or {}
        if vectors_single(vectors):
            dense = {"": DenseParams(int(vectors["size"]), str(vectors.get("distance", "Cosine")))}
        else:
            dense = {name: DenseParams(int(p["size"]), str(p.get("distance", "Cosine"))) for name, p in vectors.items()}
        sparse = {name: (params or {}).get("modifier") for name, params in (config.get("sparse_vectors") or {}).items()}
        return cls(dense, sparse)

    def name_check(self, name: str) -> None:
        if name not in self.dense and name not in self.sparse:
            raise BadInput(f"Not existing vector name error: {name}")

    def distance(self, name: str) -> str:
        """The distance a query `using` this vector scores with (sparse vectors score by dot product)."""
        self.name_check(name)
        return self.dense[name].distance if name in self.dense else "Dot"


def vectors_single(vectors: Any) -> bool:
    """A `vectors` config of one unnamed vector (`{"size": 4, "distance": "Dot"}`), not a map of names."""
    return isinstance(vectors, dict) and isinstance(vectors.get("size"), int) and not isinstance(vectors["size"], bool)


# --- collection config ---------------------------------------------------------------------------------

def dense_params_parse(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected a vector config object")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= SIZE_MAX:
        raise BadInput(f"{where}.size: must be an integer from 1 to {SIZE_MAX}")
    distance = value.get("distance", "Cosine")
    if distance not in DISTANCES:
        raise FormatError(f"Format error in JSON body: {where}.distance: unknown variant `{distance}`, expected "
                          f"one of {', '.join(f'`{d}`' for d in DISTANCES)}")
    params: dict[str, Any] = {"size": size, "distance": distance}
    for key in DENSE_OPTIONAL:
        if value.get(key) is not None:
            params[key] = value[key]
    if "on_disk" in params and not isinstance(params["on_disk"], bool):
        raise FormatError(f"Format error in JSON body: {where}.on_disk: expected a boolean")
    return params


def sparse_params_parse(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected a sparse vector config object")
    params: dict[str, Any] = {}
    if value.get("index") is not None:
        if not isinstance(value["index"], dict):
            raise FormatError(f"Format error in JSON body: {where}.index: expected an object")
        params["index"] = {key: item for key, item in value["index"].items() if item is not None}
        datatype = params["index"].get("datatype")
        if datatype is not None and datatype not in SPARSE_DATATYPES:
            raise BadInput(f"{where}.index.datatype: sparse vectors do not support the `{datatype}` datatype "
                           f"(one of {', '.join(SPARSE_DATATYPES)})")
    modifier = value.get("modifier")
    if modifier is not None:
        if modifier not in SPARSE_MODIFIERS:
            raise FormatError(f"Format error in JSON body: {where}.modifier: unknown variant `{modifier}`, "
                              f"expected `none` or `idf`")
        params["modifier"] = modifier
    return params


def vectors_config_parse(body: dict[str, Any]) -> dict[str, Any]:
    """The `vectors`, `sparse_vectors` and `on_disk_payload` of a create-collection body, validated, in the
    shape they are stored and shown in collection info (optional fields only when given, as Qdrant)."""
    config: dict[str, Any] = {}
    vectors = body.get("vectors")
    if vectors is None:
        config["vectors"] = {}
    elif vectors_single(vectors):
        config["vectors"] = dense_params_parse(vectors, "vectors")
    elif isinstance(vectors, dict) and "size" not in vectors:
        config["vectors"] = {name: dense_params_parse(params, f"vectors.{name}") for name, params in vectors.items()}
    else:
        raise BadInput("vectors: expected {\"size\": N, \"distance\": ...} or a map of named vector configs")
    sparse = body.get("sparse_vectors")
    if sparse is not None:
        if not isinstance(sparse, dict):
            raise FormatError("Format error in JSON body: sparse_vectors: expected a map of names to configs")
        if "" in sparse:
            raise BadInput("Sparse vector name cannot be empty")
        config["sparse_vectors"] = {name: sparse_params_parse(params, f"sparse_vectors.{name}")
                                    for name, params in sparse.items()}
        both = sorted(set(config["sparse_vectors"]) & set(VectorSpec.from_config(config).dense))
        if both:
            raise BadInput(f"Dense and sparse vector names must be unique - duplicate found with '{both[0]}'")
    if body.get("on_disk_payload") is not None:
        if not isinstance(body["on_disk_payload"], bool):
            raise FormatError("Format error in JSON body: on_disk_payload: expected a boolean")
        config["on_disk_payload"] = body["on_disk_payload"]
    return config


# --- a point's vectors -----------------------------------------------------------------------------------

def numbers_check(value: Any, where: str) -> list[float]:
    # set/map run in C: no Python frame per value (this is on every upsert's path); bool is not int here
    if not isinstance(value, list) or not set(map(type, value)) <= NUMBER_TYPES:
        raise FormatError(f"Format error in JSON body: {where}: expected a list of numbers")
    return value


def dense_parse(value: Any, params: DenseParams, where: str) -> bytes:
    if isinstance(value, list) and value and isinstance(value[0], list):
        raise BadInput("Multivectors are not supported by shardsim")
    numbers_check(value, where)
    if len(value) != params.size:
        raise BadInput(f"Vector dimension error: expected dim: {params.size}, got {len(value)}")
    try:
        return vector_pack(value)
    except (OverflowError, struct.error):
        raise BadInput(f"{where}: a value does not fit in a float32") from None


def sparse_parse(value: Any, where: str) -> list[bytes]:
    """A sparse vector `{"indices", "values"}`, checked as Qdrant's validator does (422 for lengths that
    differ or indices that repeat), packed sorted by index."""
    if not isinstance(value, dict) or not isinstance(value.get("indices"), list) \
            or not isinstance(value.get("values"), list):
        raise FormatError(f"Format error in JSON body: {where}: expected a sparse vector "
                          f"{{\"indices\": [...], \"values\": [...]}}")
    indices, values = value["indices"], numbers_check(value["values"], f"{where}.values")
    if not all(type(i) is int and 0 <= i <= U32_MAX for i in indices):
        raise FormatError(f"Format error in JSON body: {where}.indices: expected integers from 0 to {U32_MAX}")
    if len(indices) != len(values):
        raise ValidationError(f"Validation error in JSON body: [{where}.values: Validation error: must be the same "
                              f"length as indices [{{}}]]")
    if len(set(indices)) != len(indices):
        raise ValidationError(f"Validation error in JSON body: [{where}.indices: Validation error: must be unique "
                              f"[{{}}]]")
    if not all(math.isfinite(v) for v in values):
        raise BadInput(f"{where}: values must be finite numbers")
    try:
        return sparse_pack(indices, values)
    except (OverflowError, struct.error):
        raise BadInput(f"{where}: a value does not fit in a float32") from None


def vector_parse(name: str, value: Any, spec: VectorSpec, where: str) -> bytes | list[bytes]:
    """One named vector of a point, checked against the collection's config (a sparse vector's own shape
    first, as Qdrant validates the request before it looks at the collection)."""
    if isinstance(value, dict):
        packed = sparse_parse(value, where)
        if name in spec.sparse:
            return packed
        if name in spec.dense:
            raise BadInput(f"Conversion between sparse and regular vectors failed: vector `{name}` is dense")
        raise BadInput(f"Not existing vector name error: {name}")
    if name in spec.dense:
        return dense_parse(value, spec.dense[name], where)
    if name in spec.sparse:
        raise BadInput(f"Conversion between sparse and regular vectors failed: vector `{name}` is sparse")
    raise BadInput(f"Not existing vector name error: {name}")


def sparse_shapes_check(value: Any, where: str) -> None:
    """The shape of every sparse vector in a point's `vector` map (Qdrant's validator runs on the whole
    request before anything looks at the collection's config)."""
    if isinstance(value, dict):
        for vector in value.values():
            if isinstance(vector, dict):
                sparse_parse(vector, f"{where}.?")


def vectors_parse(value: Any, spec: VectorSpec, where: str = "vector") -> Vectors:
    """A point's `vector` (a list: the unnamed vector; a map: named dense and sparse vectors) in canonical
    form, every vector checked against the config. Raises BadInput / FormatError, so nothing bad is stored."""
    if isinstance(value, list):
        if "" not in spec.dense:
            raise BadInput("Not existing vector name error: ")
        return dense_parse(value, spec.dense[""], where)
    if not isinstance(value, dict):
        raise FormatError(f"Format error in JSON body: {where}: expected a vector or a map of named vectors")
    sparse_shapes_check(value, where)
    packed = {name: vector_parse(name, value[name], spec, f"{where}.?") for name in sorted(value)}
    only = packed.get("")
    if len(packed) == 1 and type(only) is bytes:
        return only
    return packed


def vectors_map(vectors: Vectors) -> dict[str, Any]:
    """A point's canonical vectors as a map of names (the unnamed vector is "")."""
    return {"": vectors} if type(vectors) is bytes else vectors  # type: ignore[return-value]


def vectors_merge(old: Vectors, new: Vectors) -> Vectors:
    """`update_vectors`: the given vectors replace those of the same names, the others stay."""
    merged = {**vectors_map(old), **vectors_map(new)}
    packed = {name: merged[name] for name in sorted(merged)}
    return packed[""] if len(packed) == 1 and type(packed.get("")) is bytes else packed


def vectors_without(old: Vectors, names: list[str]) -> Vectors:
    """`delete_vectors`: the point's vectors without the given names."""
    kept = {name: value for name, value in vectors_map(old).items() if name not in names}
    return kept[""] if len(kept) == 1 and type(kept.get("")) is bytes else kept


# --- printing as Qdrant does ------------------------------------------------------------------------------

def float32_shortest(value: float) -> float:
    """The double whose shortest decimal is the shortest decimal of this float32 (Qdrant prints f32 that
    way). For a normal float32, 6 digits that read back are the shortest digits (padded), so inputs with up to
    6 significant digits (the usual case) need one formatting; subnormals have fewer digits of precision."""
    if not math.isfinite(value):
        return value
    target = _F32.unpack(_F32.pack(value))[0]
    for digits in (6, 7, 8, 9) if abs(target) >= F32_NORMAL_MIN else range(1, 10):
        candidate = float(f"{target:.{digits}g}")
        if _F32.unpack(_F32.pack(candidate))[0] == target:
            return candidate
    return target


def floats32_shortest(data: bytes) -> list[float]:
    """`float32_shortest` of every value of a little-endian float32 array, in bulk: the values still open are
    formatted with 6, then 7, 8 and 9 significant digits, each round in one formatting and one packing, and a
    value is settled at the first round whose digits read back as its float32. Zeros and subnormals (fewer
    digits may do) and non-finite values go one by one. The same result as one by one, several times faster."""
    count = len(data) // 4
    values = struct.unpack(f"<{count}f", data)
    if count and min(map(abs, values)) >= F32_NORMAL_MIN and math.isfinite(sum(values)):
        # every value normal and finite (a NaN makes the sum NaN), so 6 digits that read back are the
        # shortest; the usual case is that all of them do, which one packing of them all tells at once
        candidates = list(map(float, (("%.6g," * count) % values).split(",", count)[:count]))
        if struct.pack(f"<{count}f", *candidates) == data:
            return candidates
    result = list(values)
    pending = [i for i, value in enumerate(values) if not (abs(value) >= F32_NORMAL_MIN and value != INFINITY)]
    for i in pending:  # zero, subnormal, inf or nan: the careful way
        result[i] = float32_shortest(values[i])
    open_ = [i for i, value in enumerate(values) if abs(value) >= F32_NORMAL_MIN and value != INFINITY] \
        if pending else list(range(count))
    for digits in (6, 7, 8):
        if not open_:
            break
        texts = ((f"%.{digits}g," * len(open_)) % tuple(values[i] for i in open_)).split(",")
        candidates = [float(text) for text in texts[:len(open_)]]
        back = struct.unpack(f"<{len(open_)}f", struct.pack(f"<{len(open_)}f", *candidates))
        still = []
        for i, candidate, read in zip(open_, candidates, back, strict=True):
            if read == values[i]:
                result[i] = candidate
            else:
                still.append(i)
        open_ = still
    for i in open_:  # 9 significant digits always read back
        result[i] = float(f"{values[i]:.9g}")
    return result


def dense_out(data: bytes) -> list[float]:
    return floats32_shortest(data)


def vector_out(value: bytes | list[bytes]) -> Any:
    if type(value) is bytes:
        return dense_out(value)
    indices, values = sparse_unpack(value)  # type: ignore[arg-type]
    return {"indices": indices, "values": [float32_shortest(x) for x in values]}


def vectors_out(vectors: Vectors, with_vector: Any) -> Any:
    """A point's vectors as Qdrant returns them: a list when the only vector shown is the unnamed dense one,
    else a map of names. `with_vector` is true, false, or a list of names."""
    if not with_vector:
        return None
    if type(vectors) is bytes and (with_vector is True or "" in with_vector):
        return dense_out(vectors)
    shown = {name: value for name, value in vectors_map(vectors).items()
             if with_vector is True or name in with_vector}
    if len(shown) == 1 and type(shown.get("")) is bytes:
        return dense_out(shown[""])
    return {name: vector_out(value) for name, value in shown.items()}


def with_vector_parse(value: Any, spec: VectorSpec) -> Any:
    """`with_vector`/`with_vectors`: a boolean, or a list of names (each must exist)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        for name in value:
            spec.name_check(name)
        return value
    raise FormatError("Format error in JSON body: with_vector: expected a boolean or a list of vector names")
