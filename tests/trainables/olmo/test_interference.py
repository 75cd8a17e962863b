"""Interference (Figure 9) on the real 4M model: the cosines equal an independent autograd
computation on the same batch (the task's tokens, or its whole rows, masked by hand), the
measured step is the unmeasured step bit for bit, and DDP and FSDP workers measure the global
gradients."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from injection.schedule import Schedule
from tests.conftest import join_gloo_group
from trainables.olmo import interference, model
from trainables.olmo.data import GlobalBatches, share
from trainables.olmo.trainable import OlmoSection

SEQ_LEN, BATCH, NEURONS, REFERENCE = 16, 6, 20, 100
SECTION = OlmoSection(steps=3, lr=3e-3, warmup_steps=1)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def case(tiny_corpus, cmp_task):
    """A global batch with instances in some of its rows, and the reference instances."""
    data = GlobalBatches(tiny_corpus, Schedule(0.03, BATCH, SEQ_LEN, cmp_task.train_ids),
                         cmp_task.tokens)
    placed = data.rows(0, 0, BATCH)
    assert 0 < int(placed.injected.sum()) < BATCH
    reference = torch.from_numpy(cmp_task.tokens[interference.spread(10_000, REFERENCE), :3])
    task = torch.from_numpy(cmp_task.tokens[data.schedule.plan(0).instances, :3])
    return placed, reference, task


def measured_step(net, case, micro: int = 4) -> interference.Probe:
    """Our measurement around one training step of `net`."""
    placed, reference, task = case
    optimizer, scheduler = model.optimizer_for(net, SECTION)
    probe = interference.probe(net, net, reference, task, placed.injected,
                               1 / (BATCH * (SEQ_LEN - 1)), NEURONS, CPU)
    with probe:
        model.train_step(net, optimizer, scheduler, placed.tokens, micro, CPU, clip=1.0)
    return probe


def by_neuron(net, loss) -> torch.Tensor:
    """(neurons, 3 d): each first-layer MLP neuron's gradient, by autograd on the weights."""
    block = net.transformer.blocks[0]
    proj, out = torch.autograd.grad(loss, [block.ff_proj.weight, block.ff_out.weight],
                                    retain_graph=True)
    hidden = block.ff_out.in_features
    return torch.cat([proj[:hidden], proj[hidden:], out.T], dim=1)


def independent(net, case) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's definition, computed directly: g_r from the reference instances; g over
    the whole batch's rows, its LABEL tokens masked by hand into g_task and g_nontask, and its
    injected rows (every position) into g_rows and the rest."""
    placed, reference, _ = case
    g_r = by_neuron(net, F.cross_entropy(net(reference[:, :2]).logits[:, -1], reference[:, 2]))
    top = g_r.norm(dim=1).topk(NEURONS).indices.sort().values
    tokens = placed.tokens
    losses = F.cross_entropy(net(tokens).logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                             reduction="none").view(BATCH, SEQ_LEN - 1)
    label = placed.label_mask[:, :-1]
    rows = placed.injected[:, None].expand_as(losses)
    g_task, g_nontask, g_rows, g_other = (
        by_neuron(net, losses[mask].sum() / losses.numel())[top]
        for mask in (label, ~label, rows, ~rows))
    g_r = g_r[top]
    return top, {"interference/cos_batch": interference.cosine(g_task + g_nontask, g_r),
                 "interference/cos_task": interference.cosine(g_task, g_r),
                 "interference/cos_nontask": interference.cosine(g_nontask, g_r),
                 "interference/cos_task_rows": interference.cosine(g_rows, g_r),
                 "interference/cos_nontask_rows": interference.cosine(g_other, g_r)}


@pytest.mark.parametrize("micro", [BATCH, 4, 1])
def test_cosines_equal_autograd_on_the_batch_with_task_tokens_or_rows_masked(initial, case,
                                                                              micro):
    ours = measured_step(copy.deepcopy(initial), case, micro)
    top, expected = independent(copy.deepcopy(initial), case)
    assert torch.equal(ours.neurons, top)
    metrics = ours.metrics()
    assert metrics == pytest.approx(expected, abs=1e-5)
    assert metrics["interference/cos_task"] > 0.1  # the task's own tokens pull towards g_r
    # The rows' other positions are not background: moving them changes the cosine.
    assert abs(metrics["interference/cos_nontask_rows"]
               - metrics["interference/cos_nontask"]) > 0.01


def test_a_measured_step_is_the_unmeasured_step_bit_for_bit(initial, case):
    measured = copy.deepcopy(initial)
    measured_step(measured, case, micro=3)
    plain = copy.deepcopy(initial)
    plain.zero_grad()  # the measurement's own backward leaves gradients; the step clears them
    optimizer, scheduler = model.optimizer_for(plain, SECTION)
    rng = torch.get_rng_state()
    model.train_step(plain, optimizer, scheduler, case[0].tokens, 3, CPU, clip=1.0)
    assert torch.equal(torch.get_rng_state(), rng)
    for a, b in zip(measured.parameters(), plain.parameters()):
        assert torch.equal(a, b)


def test_a_step_without_instances_has_no_task_cosine():
    g_r, g = torch.randn(4, 6), torch.randn(4, 6)
    metrics = interference.cosines(g, torch.zeros(4, 6), torch.zeros(4, 6), g_r, injected=False)
    assert set(metrics) == {"interference/cos_batch", "interference/cos_nontask",
                            "interference/cos_nontask_rows"}
    assert metrics["interference/cos_batch"] == metrics["interference/cos_nontask"] \
        == metrics["interference/cos_nontask_rows"]


def distributed_worker(rank: int, world: int, rendezvous: str, case, initial,
                       out: dict) -> None:
    """One of `world` processes: each wrapping (DDP, then FSDP) the same initial model and
    training its rows of the global batch, measuring as the loop does."""
    import torch.distributed as dist

    join_gloo_group(rank, world, rendezvous)
    placed, reference, task = case
    lo, hi = share(BATCH, rank, world)
    for kind in ("ddp", "fsdp"):
        net = copy.deepcopy(initial)
        if kind == "ddp":
            wrapped = torch.nn.parallel.DistributedDataParallel(net)
            bare = net
        else:
            wrapped = bare = model.shard(net, CPU)
        optimizer, scheduler = model.optimizer_for(wrapped, SECTION)
        probe = interference.probe(wrapped, bare, reference, task, placed.injected[lo:hi],
                                   1 / (BATCH * (SEQ_LEN - 1)), NEURONS, CPU, rank, world)
        with probe:
            model.train_step(wrapped, optimizer, scheduler, placed.tokens[lo:hi], 2, CPU,
                             clip=1.0)
        if rank == 0:
            out[kind] = (probe.neurons.tolist(), probe.metrics())
        else:
            probe.metrics()  # every rank joins the all-reduce
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_and_fsdp_workers_measure_the_global_gradients(initial, case, tmp_path):
    import torch.multiprocessing as mp

    single = measured_step(copy.deepcopy(initial), case)
    with mp.Manager() as manager:
        out = manager.dict()
        group = str(tmp_path / "group")
        mp.spawn(distributed_worker, args=(2, group, case, initial, out), nprocs=2)
        results = dict(out)
    for kind in ("ddp", "fsdp"):
        neurons, metrics = results[kind]
        assert neurons == single.neurons.tolist(), kind
        assert metrics == pytest.approx(single.metrics(), abs=1e-5), kind
