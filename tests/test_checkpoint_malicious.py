"""Hostile and broken checkpoint files are refused with clear errors, and nothing in them runs."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from edgeseg.errors import ModelLoadError  # noqa: E402
from edgeseg.nn.checkpoint import (  # noqa: E402
    CheckpointError,
    CheckpointFormatError,
    CheckpointNotFoundError,
    UnsafeCheckpointError,
    read_torch_zip,
)
from edgeseg.nn.checkpoint.safe_unpickle import allowed_globals  # noqa: E402
from edgeseg.nn.load import load_model  # noqa: E402
from shared_paths import SHARED  # noqa: E402

RAND_V8 = SHARED / "models" / "yolov8n-seg-rand.pt"


def _torch_zip(path: Path, data_pkl: bytes, records: dict | None = None) -> Path:
    """A file laid out like torch.save's zip: <name>/data.pkl, data/<key> records, version files."""
    name = "archive"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{name}/data.pkl", data_pkl)
        zf.writestr(f"{name}/byteorder", "little")
        for key, raw in (records or {}).items():
            zf.writestr(f"{name}/data/{key}", raw)
        zf.writestr(f"{name}/version", "3\n")
    return path


def _s(text: str) -> bytes:
    """A protocol-0 string literal."""
    return b"S" + repr(text).encode() + b"\n"


def _call(module: str, name: str, *args: str) -> bytes:
    """Protocol-0 pickle of ``module.name(*args)`` (GLOBAL + REDUCE)."""
    body = b"".join(_s(a) for a in args)
    return b"c" + f"{module}\n{name}\n".encode() + b"(" + body + b"tR."


class _Reducer:
    """Pickles as a call of ``func(*args)`` (pickled in the test, never unpickled by it)."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _assert_refused(path: Path, global_name: str, marker: Path) -> None:
    for loader in (read_torch_zip, load_model):
        with pytest.raises(UnsafeCheckpointError) as info:
            loader(path)
        message = str(info.value)
        assert f"'{global_name}'" in message, message
        assert "allow-list" in message and str(path) in message
        assert info.value.global_name == global_name
        assert isinstance(info.value, (CheckpointError, ModelLoadError))
        assert not marker.exists(), "the payload ran"


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "pwned"


def test_os_system_refused(tmp_path, marker):
    path = _torch_zip(tmp_path / "evil.pt", _call("os", "system", f"touch {marker}"))
    _assert_refused(path, "os.system", marker)


def test_posix_system_stack_global_refused(tmp_path, marker):
    # protocol 4 resolves globals with STACK_GLOBAL (module and name pushed as strings)
    data = pickle.dumps(_Reducer(os.system, (f"touch {marker}",)), protocol=4)
    path = _torch_zip(tmp_path / "evil.pt", data)
    _assert_refused(path, f"{os.system.__module__}.system", marker)


def test_builtins_eval_refused(tmp_path, marker):
    code = f"__import__('os').system('touch {marker}')"
    path = _torch_zip(tmp_path / "evil.pt", _call("builtins", "eval", code))
    _assert_refused(path, "builtins.eval", marker)


def test_builtins_exec_via_legacy_module_name_refused(tmp_path, marker):
    code = f"open({str(marker)!r}, 'w').close()"
    path = _torch_zip(tmp_path / "evil.pt", b"\x80\x02" + _call("__builtin__", "exec", code))
    _assert_refused(path, "__builtin__.exec", marker)


def test_subprocess_popen_refused(tmp_path, marker):
    data = b"csubprocess\nPopen\n((" + _s("touch") + _s(str(marker)) + b"ltR."
    path = _torch_zip(tmp_path / "evil.pt", data)
    _assert_refused(path, "subprocess.Popen", marker)


def test_reduce_through_getattr_refused(tmp_path, marker):
    # getattr(collections.OrderedDict, "fromkeys")(...) - getattr must never be handed out
    data = b"cbuiltins\ngetattr\n(ccollections\nOrderedDict\n" + _s("fromkeys") + b"tR(" + _s("x") + b"tR."
    path = _torch_zip(tmp_path / "evil.pt", data)
    _assert_refused(path, "builtins.getattr", marker)


def test_functools_partial_and_importlib_refused(tmp_path, marker):
    for module, name in (
        ("functools", "partial"),
        ("importlib", "import_module"),
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("ultralytics.nn.tasks", "DetectionModel"),
        ("ultralytics.utils", "checks"),
    ):
        path = _torch_zip(tmp_path / f"{module}.{name}.pt", _call(module, name, "os"))
        _assert_refused(path, f"{module}.{name}", marker)


def test_legit_checkpoint_with_hidden_posix_system(tmp_path, marker):
    """A real torch.save zip with modules and tensors, plus one entry that calls posix.system."""
    ckpt = {
        "date": "2025-01-01",
        "version": "8.4.0",
        "model": torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.SiLU()).half(),
        "train_args": {"imgsz": 640},
        "callback": _Reducer(os.system, (f"touch {marker}",)),
    }
    path = tmp_path / "legit_looking.pt"
    torch.save(ckpt, path)
    _assert_refused(path, f"{os.system.__module__}.system", marker)


def test_ext_opcode_refused(tmp_path, marker):
    path = _torch_zip(tmp_path / "ext.pt", b"\x80\x02\x82\x01.")  # EXT1 code 1
    with pytest.raises(UnsafeCheckpointError, match="EXT1"):
        read_torch_zip(path)


def test_native_looking_file_with_payload_refused(tmp_path, marker):
    """A file that claims to be an edgeseg checkpoint goes through torch's weights_only loader."""
    payload = {"format": "edgeseg-checkpoint", "version": 1, "evil": _Reducer(os.system, (f"touch {marker}",))}
    path = tmp_path / "fake_native.pt"
    torch.save(payload, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_model(path)
    assert "system" in str(info.value)
    assert not marker.exists()


def test_allow_list_is_inert():
    """Every allowed global is a container, an inert marker, a stand-in class or our own helper."""
    import builtins
    import collections

    for dotted, target in allowed_globals().items():
        assert not dotted.startswith(("os.", "posix.", "subprocess.", "importlib.", "functools."))
        module = getattr(target, "__module__", "") or ""
        assert (
            target in (set, frozenset, collections.OrderedDict)
            or module.startswith("edgeseg.")
            or type(target).__module__.startswith("edgeseg.")
        ), dotted
        assert target not in (builtins.eval, builtins.exec, builtins.getattr, builtins.__import__)


# -- broken files: clear errors, all CheckpointError subclasses ------------------------------------


def test_missing_file(tmp_path):
    for loader in (read_torch_zip, load_model):
        with pytest.raises(CheckpointNotFoundError) as info:
            loader(tmp_path / "nope.pt")
        assert isinstance(info.value, FileNotFoundError)
        assert "nope.pt" in str(info.value)


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointNotFoundError):
        read_torch_zip(tmp_path)


def test_legacy_plain_pickle(tmp_path):
    path = tmp_path / "legacy.pt"
    path.write_bytes(pickle.dumps({"model": None}, protocol=2))
    with pytest.raises(CheckpointFormatError, match="plain pickle"):
        load_model(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointFormatError, match="not a torch checkpoint|plain pickle"):
        load_model(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointFormatError, match="empty"):
        load_model(path)


def test_zip_without_data_pkl(tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointFormatError, match="data.pkl"):
        load_model(path)


def test_corrupt_pickle_in_zip(tmp_path):
    path = _torch_zip(tmp_path / "bad.pt", b"\x80\x02}q\x00(X\x03\x00")
    with pytest.raises(CheckpointFormatError, match="corrupt"):
        read_torch_zip(path)


def test_storage_record_of_wrong_size(tmp_path):
    buf = io.BytesIO()
    torch.save({"w": torch.ones(4)}, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src:
        data_pkl = next(src.read(n) for n in src.namelist() if n.endswith("data.pkl"))
    path = _torch_zip(tmp_path / "short.pt", data_pkl, {"0": b"\x00" * 8})  # 2 floats, not 4
    with pytest.raises(CheckpointFormatError, match="expected 16"):
        read_torch_zip(path)


def test_tensor_past_end_of_storage(tmp_path):
    import collections
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated, but it is what torch pickles
        storage = torch.ones(2).storage()
    rebuild = _Reducer(torch._utils._rebuild_tensor_v2, (storage, 0, (10,), (1,), False, collections.OrderedDict()))
    path = tmp_path / "oob.pt"
    torch.save({"w": rebuild}, path)
    with pytest.raises(CheckpointFormatError, match="past the end"):
        read_torch_zip(path)


def test_compressed_storage_record_refused(tmp_path):
    """torch writes records uncompressed; a deflated one (a possible zip bomb) is refused."""
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(1000)}, buf)
    path = tmp_path / "deflated.pt"
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(path, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointFormatError, match="compressed"):
        read_torch_zip(path)


@pytest.mark.skipif(not RAND_V8.is_file(), reason="shared test models not available")
def test_truncated_real_checkpoint(tmp_path):
    raw = RAND_V8.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointFormatError, match="truncated|corrupt"):
        load_model(path)
