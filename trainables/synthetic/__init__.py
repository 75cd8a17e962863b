"""The synthetic student (CONTRACTS 5): K linear-regression tasks sharing one orthonormal
width-N encoder. `trainable` is its contract (light); `theory` the closed-form optimum;
`problem` a pack's problem (spectrum, default lr); `student` the numerical core (torch);
`loop` the per-worker loop (Ray); `student_model` the trained model's MLflow format."""

from trainables.synthetic.trainable import SYNTHETIC, SyntheticSection

__all__ = ["SYNTHETIC", "SyntheticSection"]
