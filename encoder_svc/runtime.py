"""The exported model under onnxruntime: float batches in, embeddings and leaf probabilities out."""

from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.errors import FailedPrecondition, InvalidArgument, NotFound
from encoder_svc.preprocess import PreprocessParams
from encoder_svc.registry import MODEL_FILE, ModelMeta

INPUT = "image"
OUTPUTS = ("embedding", "probs")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
QUANTIZE_COMMAND = "python -m encoder_svc.quantize --version-dir DIR --catalog DIR"
# Measured on 2 cores, batch 64: onnxruntime's default (long) spinning ran int8 at 10.8k images/s
# on idle cores but 3.4k when other processes used them; no spinning 8.6k / 5.2k; 20 us 10.7k /
# 4.4-5.1k. A short spin keeps the worker for the next op of a run but not between runs.
SPIN_US = 20
VARIANTS = {"fp32": MODEL_FILE, "int8": "model.int8.onnx"}  # variant -> file in the version


class Encoder:
    """One loaded model version; `embed` may be called from several threads at once."""

    def __init__(self, session: ort.InferenceSession, meta: ModelMeta) -> None:
        self._session = session
        self.meta = meta
        self.device = "cuda" if session.get_providers()[0] == CUDA else "cpu"

    @classmethod
    def load(
        cls, version_dir: Path, threads: int = 0, variant: str = "fp32", spin_us: int = SPIN_US
    ) -> "Encoder":
        """Loads a version directory, on the GPU when onnxruntime offers CUDA, else the CPU.

        Args:
            version_dir: holds model.onnx and meta.json.
            threads: onnxruntime intra-op threads; 0 lets it choose.
            variant: "fp32" (model.onnx) or "int8" (model.int8.onnx, its quantisation).
            spin_us: how long an idle onnxruntime thread busy-waits for the next op before it
                sleeps; 0 never.

        Raises:
            InvalidArgument: an unknown variant.
            NotFound: the version has no file for the variant.
            FailedPrecondition: the file's embedding width is not the meta's dimension.
        """
        if variant not in VARIANTS:
            raise InvalidArgument(f"unknown model variant {variant!r}; one of {sorted(VARIANTS)}")
        model_file = version_dir / VARIANTS[variant]
        if not model_file.is_file():
            raise NotFound(
                f"model version {version_dir} has no {variant} model {model_file.name}"
                + (f"; make it with `{QUANTIZE_COMMAND}`" if variant == "int8" else "")
            )
        providers = [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]
        session = ort.InferenceSession(
            str(model_file), sess_options=session_options(threads, spin_us), providers=providers
        )
        meta = ModelMeta.load(version_dir)
        (width,) = (out.shape[1] for out in session.get_outputs() if out.name == OUTPUTS[0])
        if width != meta.dim:
            raise FailedPrecondition(
                f"model version {version_dir} says its embeddings have {meta.dim} dimensions "
                f"but {model_file.name} makes {width}"
            )
        return cls(session, meta)

    @property
    def version(self) -> str:
        return self.meta.version

    @property
    def leaves(self) -> tuple[str, ...]:
        return self.meta.leaves

    @property
    def dim(self) -> int:
        return self.meta.dim

    @property
    def params(self) -> PreprocessParams:
        return self.meta.preprocess

    def embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Runs one batch through the model.

        Args:
            batch: float32 (N, 3, H, W), as `preprocess.normalise` makes it.

        Returns:
            (embeddings (N, dim), L2-normalised; leaf probabilities (N, len(leaves))).

        Raises:
            InvalidArgument: the batch does not have the model's input shape.
        """
        expected = (3, self.params.height, self.params.width)
        if batch.ndim != 4 or batch.shape[1:] != expected or len(batch) == 0:
            raise InvalidArgument(f"batch of shape {batch.shape} is not (N>0, {expected})")
        embeddings, probs = self._session.run(
            list(OUTPUTS), {INPUT: np.ascontiguousarray(batch, dtype=np.float32)}
        )
        return embeddings, probs

    def top_leaves(self, probs: np.ndarray, n: int) -> list[list[tuple[str, float]]]:
        """The `n` most probable leaves of each row of probabilities (N, leaves), most probable
        first: one sort for the whole block."""
        best = np.argsort(-probs, axis=1, kind="stable")[:, : max(n, 0)]
        chosen = np.take_along_axis(probs, best, axis=1).tolist()
        leaves = self.leaves
        return [
            [(leaves[i], prob) for i, prob in zip(row, probs_row, strict=True)]
            for row, probs_row in zip(best.tolist(), chosen, strict=True)
        ]


def session_options(threads: int, spin_us: int = SPIN_US) -> ort.SessionOptions:
    """How the model runs: every graph optimisation (with the CPU's blocked conv layout), one
    batch at a time on `threads` intra-op threads (0: onnxruntime chooses), no inter-op pool,
    idle threads spinning `spin_us` microseconds before they sleep."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spin_us > 0)))
    if spin_us > 0:
        options.add_session_config_entry("session.intra_op.spin_duration_us", str(spin_us))
    return options
