"""`olmo.compile` on the real 4M model (CPU, one thread): the compiled step (each block and
the loss's chunk step compiled) follows the eager loss curve, a compiled run resumes exactly
from a checkpoint that an eager model loads too, and a measured step runs eagerly, so its
hooks measure what they measure on an eager model. Slow: the first compilation in a fresh
process takes about a minute on a loaded 2-core machine (seconds with inductor's cache)."""

from __future__ import annotations

import copy

import pytest
import torch

from injection.schedule import Schedule
from trainables.olmo import interference, model
from trainables.olmo.data import GlobalBatches, share
from trainables.olmo.trainable import OlmoSection

pytestmark = pytest.mark.slow

SEQ_LEN, BATCH, STEPS = 16, 4, 4
SECTION = OlmoSection(steps=STEPS, lr=3e-3, warmup_steps=1)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def batches(tiny_corpus, cmp_task) -> GlobalBatches:
    return GlobalBatches(tiny_corpus, Schedule(0.03, BATCH, SEQ_LEN, cmp_task.train_ids),
                         cmp_task.tokens)


def parts(initial, compiled: bool):
    net = copy.deepcopy(initial)
    if compiled:
        net.compile_step()
    return (net, *model.optimizer_for(net, SECTION))


def train(parts, batches, steps) -> list[float]:
    return [model.train_step(*parts, batches.rows(step, 0, BATCH).tokens, BATCH, CPU,
                             clip=1.0)["loss"].item() for step in steps]


def test_compiled_training_follows_the_eager_loss_curve(initial, batches):
    eager, compiled = parts(initial, False), parts(initial, True)
    curves = [train(p, batches, range(STEPS)) for p in (eager, compiled)]
    assert curves[1] == pytest.approx(curves[0], rel=1e-4)
    assert curves[0][-1] < curves[0][0]
    # AdamW moves a weight by up to ~lr a step whatever its gradient's size, so rounding (which
    # differs between inductor's vectorised kernels and eager ones: on an AVX-512 CPU a weight
    # of 4M's differed by 0.6% of lr after 4 steps, each weight having moved by up to 2.5 lr)
    # can move a weight with a near-zero gradient by a small fraction of lr; a real difference
    # between the two steps moves weights by whole multiples of it.
    for a, b in zip(eager[0].parameters(), compiled[0].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=0.02 * SECTION.lr)


def test_a_compiled_run_resumes_exactly_and_its_state_is_olmos(initial, batches, tmp_path):
    from torch.distributed.checkpoint import FileSystemReader

    straight = parts(initial, True)
    losses = train(straight, batches, range(3))
    first = parts(initial, True)
    train(first, batches, range(1))
    model.save_state(*first[:2], tmp_path)
    saved = FileSystemReader(str(tmp_path)).read_metadata().state_dict_metadata
    weights = [key.removeprefix("model.") for key in saved if key.startswith("model.")]
    assert weights == list(initial.state_dict())  # OLMo's names, uncompiled

    def resumed(compiled: bool):
        restored = parts(initial, compiled)
        model.load_state(*restored[:2], tmp_path)
        restored[2].load_state_dict(first[2].state_dict())
        return restored

    assert train(resumed(True), batches, range(1, 3)) == losses[1:]
    # the same checkpoint on an eager model
    assert train(resumed(False), batches, range(1, 3)) == pytest.approx(losses[1:], rel=1e-4)


def test_a_measured_step_on_a_compiled_model_measures_what_the_eager_one_does(initial,
                                                                            batches, cmp_task):
    placed = batches.rows(0, 0, BATCH)
    reference = torch.from_numpy(cmp_task.tokens[interference.spread(10_000, 50), :3])
    task = torch.from_numpy(cmp_task.tokens[batches.schedule.plan(0).instances, :3])
    measured = {}
    for compiled in (False, True):
        net, optimizer, scheduler = parts(initial, compiled)
        train((net, optimizer, scheduler), batches, [1])  # compiled: the step compiles first
        probe = interference.probe(net, net, reference, task, placed.injected,
                                   1 / (BATCH * (SEQ_LEN - 1)), 16, CPU)
        with probe:
            model.train_step(net, optimizer, scheduler, placed.tokens, BATCH, CPU, clip=1.0)
        measured[compiled] = probe.metrics()
        assert probe.capture.grads is not None and probe.capture.grads.abs().sum() > 0
    assert measured[True] == pytest.approx(measured[False], abs=1e-4)


def distributed_worker(rank: int, world: int, rendezvous: str, initial, tokens,
                       out: dict) -> None:
    """One of `world` processes training its rows of each global batch on a compiled model,
    wrapped by DDP, then by FSDP."""
    import torch.distributed as dist

    from tests.conftest import join_gloo_group

    torch.set_num_threads(1)
    join_gloo_group(rank, world, rendezvous)
    lo, hi = share(len(tokens[0]), rank, world)
    for kind in ("ddp", "fsdp"):
        net = copy.deepcopy(initial).compile_step()
        wrapped = (torch.nn.parallel.DistributedDataParallel(net) if kind == "ddp"
                   else model.shard(net, CPU))
        optimizer, scheduler = model.optimizer_for(wrapped, SECTION)
        losses = []
        for batch in tokens:
            loss = model.train_step(wrapped, optimizer, scheduler, batch[lo:hi], BATCH, CPU,
                                    clip=1.0)["loss"]
            dist.all_reduce(loss)  # each rank's loss is the mean over its rows
            losses.append(loss.item() / world)
        if rank == 0:
            out[kind] = losses
    dist.destroy_process_group()


def test_compiled_ddp_and_fsdp_workers_train_as_one_eager_process(initial, batches, tmp_path):
    import torch.multiprocessing as mp

    # Two workers of BATCH rows each: the shapes of the tests above, so inductor's cache serves.
    tokens = [torch.cat([batches.rows(step, 0, BATCH).tokens,
                         batches.rows(step + STEPS, 0, BATCH).tokens]) for step in range(2)]
    single = parts(initial, False)
    expected = [model.train_step(*single, batch, BATCH, CPU, clip=1.0)["loss"].item()
                for batch in tokens]
    with mp.Manager() as manager:
        out = manager.dict()
        group = str(tmp_path / "group")
        mp.spawn(distributed_worker, args=(2, group, initial, tokens, out), nprocs=2)
        results = dict(out)
    for kind in ("ddp", "fsdp"):
        assert results[kind] == pytest.approx(expected, rel=1e-4), kind
