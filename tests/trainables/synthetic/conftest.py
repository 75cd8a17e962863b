"""The synthetic core's tests run torch on one thread: its tensors are small, and a second
intra-op thread on busy cores (CI, a shared machine) made a step 30x slower, not faster."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
