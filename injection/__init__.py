"""Tasks injected into a pretraining token stream at exact frequencies (CONTRACTS 6).

The API the OLMo trainable builds on, one module per idea:

    from injection import corpus, place, reference, schedule, tasks, tokenizer

    tok = tokenizer.load()                       # default: allenai_gpt-neox-olmo-dolma-v1_5
    task = tasks.load_task("cmp", seed)          # TaskSet, built once into the cache
    task.tokens                                  # (10000, 4) TOK1 TOK2 LABEL EOS per id
    task.train_ids, task.test_ids                # the 50/50 split

    sched = schedule.Schedule(frequency, batch_size, seq_len, task.train_ids, seed=seed,
                              block=0)           # block=n: n instances at a time
    plan = sched.plan(b)                         # global batch b: rows, instances (ids)
    mine = plan.slice(lo, hi)                    # a worker's rows lo..hi-1 of the batch

    placed = place.place(tokens, mine, task.tokens)   # tokens: (B, L) LongTensor
    placed.tokens, placed.label_mask, placed.injected, placed.labels
    # task loss: cross_entropy(logits[placed.label_mask], placed.labels)

    corp = corpus.embedded()                     # or corpus.open_corpus(path)
    data = corp.dataset(seq_len)                 # ai2-olmo's MemMapDataset over it
    ref = reference.reference(corp)              # R_cmp / R_add frequencies per token
    ref_tokens, ref_mask = ref.eval_set("cmp")   # for ref/loss: loss where ref_mask

Everything is deterministic from (seed, tokenizer, frequency, batch shape, b): no state is
shared between workers or saved for a resume. Bad user input raises
`injection.errors.InjectionError` (the CLI turns it into exit code 2). Built artefacts live
in `$SWEEPS_CACHE` (default ~/.cache/scaling-sweeps).
"""
