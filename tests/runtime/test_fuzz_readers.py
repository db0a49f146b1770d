"""Every reader, fed well-formed containers with random field values: only squeezekit's own error escapes.

Each document starts as a valid one that squeezekit wrote; hypothesis then replaces, deletes or adds
fields anywhere in it (with any JSON value: huge integers, NaN, nested lists, wrong types) or replaces
it whole. The container stays well-formed (valid JSON in a valid ONNX, LiteRT or ``.sqz`` file), so
what is tested is the schema check behind each reader: the outcome must be a parsed value or a
:class:`WeightFileError` naming the file, never a ``TypeError``, ``KeyError`` or numpy error.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compression_helpers import SMALL, random_arrays, small_metadata
from squeezekit.errors import WeightFileError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
    | st.sampled_from([0, 1, -1, 2_000_000, 4096, 4097, "", "RGB", "imagenet-1k", "epoch-0001.keras", "../x.keras"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _paths(document, prefix=()):
    """Every location in a document (the document itself included), down to its leaves."""
    yield prefix
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document[:3]):
            yield from _paths(value, prefix + (index,))


@st.composite
def mutated(draw, document):
    """``document`` with one to three random changes (replace, delete, add), or replaced whole."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(document))))
        value = draw(JSON_VALUES)
        if not path:
            return value
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        operation = draw(st.sampled_from(["replace", "delete", "add"]))
        if operation == "replace":
            parent[path[-1]] = value
        elif operation == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = value
        else:
            parent.append(value)
        if not _is_reachable(document, path[:-1]):
            break
    return document


def _is_reachable(document, path) -> bool:
    for key in path:
        try:
            document = document[key]
        except (KeyError, IndexError, TypeError):
            return False
    return True


def _metadata(classes: int = 3, crop: int = 32) -> dict:
    from squeezekit.config import Preprocessing

    document = small_metadata()
    document["labels"] = [[f"c{i}", f"class {i}"] for i in range(classes)]
    document["preprocessing"] = Preprocessing(resize=max(crop, 40), crop=crop).to_dict()
    document["version"] = 1
    return document


def _only_our_error(read):
    try:
        return read()
    except WeightFileError as error:
        assert str(error).count(str(error.path)) == 1, f"names the file more than once: {error}"
        assert "\n" not in str(error)
        return None


@pytest.fixture(scope="module")
def small_onnx():
    from squeezekit.formats.onnx import build_onnx_model

    return build_onnx_model(SMALL, random_arrays(), input_size=None, metadata=_metadata())


@SETTINGS
@given(document=mutated(_metadata()))
def test_sidecar_json(tmp_path_factory, document):
    from squeezekit.formats.metadata import read_sidecar, sidecar_path

    model = tmp_path_factory.mktemp("sidecar") / "model.keras"
    sidecar_path(model).write_text(json.dumps(document))
    metadata = _only_our_error(lambda: read_sidecar(model))
    if metadata is not None:
        assert all(isinstance(a, str) and isinstance(b, str) for a, b in metadata.labels)
        assert 1 <= metadata.preprocessing.crop <= metadata.preprocessing.resize <= 4096


@SETTINGS
@given(document=mutated(_metadata()) | st.text(max_size=30))
def test_metadata_inside_an_onnx_model(tmp_path_factory, small_onnx, document):
    from onnx import helper

    from squeezekit.runtime import Classifier

    model = copy.deepcopy(small_onnx)
    del model.metadata_props[:]
    helper.set_model_props(model, {"squeezekit": document if isinstance(document, str) else json.dumps(document)})
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    path.write_bytes(model.SerializeToString())
    classifier = _only_our_error(lambda: Classifier.load(path))
    if classifier is not None:
        assert len(classifier.metadata.labels) == 3


@SETTINGS
@given(document=mutated(_metadata(classes=3, crop=227)))
def test_metadata_inside_a_litert_model(tmp_path_factory, document):
    from litert_helpers import tiny_tflite

    from squeezekit.formats.litert_metadata import write_litert_metadata
    from squeezekit.runtime import Classifier

    path = tmp_path_factory.mktemp("tflite") / "model.tflite"
    path.write_bytes(tiny_tflite())
    write_litert_metadata(path, document)
    classifier = _only_our_error(lambda: Classifier.load(path))
    if classifier is not None:
        assert len(classifier.metadata.labels) == 3


@pytest.fixture(scope="module")
def sqz_layers():
    from squeezekit.compression.api import compress_arrays

    return compress_arrays(SMALL, random_arrays(), bits=4)


@SETTINGS
@given(config=mutated(json.loads(json.dumps(SMALL.to_dict()))) | st.just(json.loads(json.dumps(SMALL.to_dict()))),
       metadata=mutated(_metadata()) | st.just(_metadata()))
def test_sqz_header(tmp_path_factory, sqz_layers, config, metadata):
    from squeezekit.formats.sqz import encode_sqz
    from squeezekit.opener import open_model
    from squeezekit.runtime import Classifier

    try:
        data, _ = encode_sqz(config, metadata, sqz_layers)
    except (TypeError, ValueError):  # the writer refuses some documents itself (not a dict, say)
        return
    path = tmp_path_factory.mktemp("sqz") / "model.sqz"
    path.write_bytes(data)
    _only_our_error(lambda: Classifier.load(path))
    _only_our_error(lambda: open_model(path, need="weights"))


def _run_state() -> dict:
    from dataclasses import asdict

    from squeezekit.training.recipes import get_recipe

    recipe = get_recipe("cifar")
    return {"config": json.loads(json.dumps(SMALL.to_dict())), "class_names": ["a", "b"], "arch": "squeezenet1_1",
            "seed": 0, "recipe": json.loads(json.dumps(asdict(recipe) | {"preprocessing": recipe.preprocessing.to_dict()})),
            "epoch": 2, "checkpoint": "epoch-0002.keras", "best_val_accuracy": 0.5, "best_epoch": 2,
            "train_seconds": 12.5}


@SETTINGS
@given(document=mutated(_run_state()))
def test_checkpoint_state(tmp_path_factory, document):
    from squeezekit._schema import parse_document
    from squeezekit.training.checkpoints import read_state
    from squeezekit.training.recipes import get_recipe, parse_recipe

    run = tmp_path_factory.mktemp("run")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "epoch-0002.keras").write_bytes(b"stand-in")
    (run / "checkpoints" / "state.json").write_text(json.dumps(document))
    state = _only_our_error(lambda: read_state(run))
    if state is not None and "recipe" in state:
        recipe = _only_our_error(lambda: parse_document(run / "state.json", state["recipe"],
                                                        lambda v: parse_recipe(v, get_recipe("cifar")), "state"))
        if recipe is not None:
            assert recipe.epochs >= 1 and recipe.batch_size >= 1


def _trial() -> dict:
    return {"overrides": {"squeeze_ratio": 0.25}, "seed": 0, "epochs": 2, "top1": 0.5, "top5": 0.9,
            "train_seconds": 10.0, "images_per_second": 100.0, "parameters": 1000, "macs": 10_000,
            "size_bytes": {"32": 4000, "8": 1000, "6": 750}}


@SETTINGS
@given(document=mutated(_trial()))
def test_trial_record(tmp_path_factory, document):
    from squeezekit.explore import TRIAL_FILE, Trial, _finished_summary, _trial_dir

    out = tmp_path_factory.mktemp("study")
    trial = Trial(overrides={"squeeze_ratio": 0.25}, seed=0, config=SMALL.replace(squeeze_ratio=0.25).to_dict())
    folder = _trial_dir(out, trial)
    folder.mkdir(parents=True)
    (folder / TRIAL_FILE).write_text(json.dumps(document))
    summary = _finished_summary(out, trial)  # a damaged record means "run it again", never an error
    assert summary is None or 0.0 <= summary["top1"] <= 1.0


@SETTINGS
@given(document=mutated(json.loads(json.dumps(SMALL.to_dict()))))
def test_architecture_config(document):
    from squeezekit._schema import parse_document
    from squeezekit.config import SqueezeNetConfig
    from squeezekit.graph import build_plan

    config = _only_our_error(lambda: parse_document(Path("config.json"), document, SqueezeNetConfig.from_dict, "config"))
    if config is not None:
        try:
            build_plan(config, 10)
        except ValueError:
            pass  # an architecture that shrinks a 227 input to nothing: the plan says so
