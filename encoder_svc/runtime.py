"""The exported model under onnxruntime: float batches in, embeddings and leaf probabilities out."""

from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.errors import InvalidArgument
from encoder_svc.preprocess import PreprocessParams
from encoder_svc.registry import MODEL_FILE, ModelMeta

INPUT = "image"
OUTPUTS = ("embedding", "probs")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class Encoder:
    """One loaded model version; `embed` may be called from several threads at once."""

    def __init__(self, session: ort.InferenceSession, meta: ModelMeta) -> None:
        self._session = session
        self.meta = meta
        self.device = "cuda" if session.get_providers()[0] == CUDA else "cpu"

    @classmethod
    def load(cls, version_dir: Path, threads: int = 0) -> "Encoder":
        """Loads a version directory, on the GPU when onnxruntime offers CUDA, else the CPU.

        Args:
            version_dir: holds model.onnx and meta.json.
            threads: onnxruntime intra-op threads; 0 lets it choose.
        """
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        providers = [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]
        session = ort.InferenceSession(
            str(version_dir / MODEL_FILE), sess_options=options, providers=providers
        )
        return cls(session, ModelMeta.load(version_dir))

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

    def top_leaves(self, probs: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The `n` most probable leaves of one row of probabilities, most probable first."""
        best = np.argsort(-probs, kind="stable")[: max(n, 0)]
        return [(self.leaves[i], float(probs[i])) for i in best]
