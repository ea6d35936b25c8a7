#!/usr/bin/env python3
"""Train a LoRA on `taskling export-training` output with TRL's SFTTrainer + PEFT.

Input: DIR/train.jsonl (+ DIR/validation.jsonl), lines {"messages": [...user/assistant turns..., final assistant = target]}.
Weights: --gguf FILE (dequantized by transformers' GGUF loader) or --hf DIR (a Hugging Face checkpoint).
Output (--out): PEFT adapter_config.json + adapter_model.safetensors; with --merge also merged/
(config.json + model.safetensors) and, with --gguf-out, a GGUF of the merged weights
(tools/finetune/write_gguf.py) that `taskling import-gguf` reads.

Tokenization: each example is rendered with the Gemma 3 chat template (the same text the engine
renders), prompt = all turns but the last with the generation prompt, completion = target +
"<end_of_turn>". Loss is on the completion only (completion_mask). Template text (bos, turn markers)
is tokenized with special tokens parsed; message contents with split_special_tokens=True, so a
literal "<end_of_turn>" in user text stays plain text, as in the engine.
"""
import argparse, json, os, sys, time

TEMPLATE_DIR_DEFAULT = os.path.join(os.path.dirname(__file__), '..', '..', 'node_modules', '@lenml', 'tokenizer-gemma3', 'models')
PH = '\ue000TASKLING_CONTENT_{}\ue001'


def load_jsonl(path, limit=None):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding='utf-8') as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                m = json.loads(line)['messages']
            except Exception as e:  # noqa: BLE001
                sys.exit(f'{path}:{n}: not a {{"messages": [...]}} line ({e})')
            if not m or m[-1]['role'] != 'assistant':
                sys.exit(f'{path}:{n}: the last message must be the assistant target')
            rows.append(m)
            if limit and len(rows) >= limit:
                break
    return rows


def encode_example(tok, messages, closing=True):
    """input_ids + completion_mask for one example (see the module docstring); closing=False leaves
    out the final <end_of_turn> (--label-only)."""
    prompt_msgs = [{'role': m['role'], 'content': PH.format(i)} for i, m in enumerate(messages[:-1])]
    rendered = tok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
    ids = []
    rest = rendered
    for i, m in enumerate(messages[:-1]):
        before, rest = rest.split(PH.format(i), 1)
        ids += tok(before, add_special_tokens=False)['input_ids']
        ids += tok(m['content'], add_special_tokens=False, split_special_tokens=True)['input_ids']
    ids += tok(rest, add_special_tokens=False)['input_ids']
    target = tok(messages[-1]['content'], add_special_tokens=False, split_special_tokens=True)['input_ids']
    eot = tok.convert_tokens_to_ids('<end_of_turn>')
    completion = target + ([eot] if closing else [])
    return {'input_ids': ids + completion, 'completion_mask': [0] * len(ids) + [1] * len(completion)}


def completion_nll(model, ds, n):
    """[[nll of each completion token] for the first n examples] under `model` (no grad)."""
    import torch
    out = []
    model.eval()
    for ex in ds.select(range(min(n, len(ds)))):
        ids = torch.tensor([ex['input_ids']])
        with torch.no_grad():
            lp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
        tgt = ids[0, 1:]
        nll = -lp[torch.arange(len(tgt)), tgt]
        mask = torch.tensor(ex['completion_mask'][1:], dtype=torch.bool)
        out.append([round(float(v), 2) for v in nll[mask]])
    model.train()
    return out


def completion_loss(model, ex):
    """Mean NLL (nats, a 0-d tensor with grad) of one example's completion tokens, computing logits
    only for the positions that predict them (`logits_to_keep`): the 262,144-row head is most of a
    forward pass over a ~200-token prompt otherwise."""
    import torch
    ids = torch.tensor([ex['input_ids']])
    c = sum(ex['completion_mask'])
    logits = model(input_ids=ids, logits_to_keep=c + 1).logits[0, :c].float()
    return torch.nn.functional.cross_entropy(logits, ids[0, -c:])


def fast_train(model, train_ds, val_ds, a):
    """AdamW, linear decay to 0, gradient accumulation over a.batch_size examples, a.epochs epochs
    (or a.max_steps optimizer steps), shuffled per epoch with a.seed. Returns (steps, log rows)."""
    import math, random, torch
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0)
    per_epoch = math.ceil(len(train_ds) / a.batch_size)
    total = a.max_steps if a.max_steps > 0 else math.ceil(per_epoch * a.epochs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total))
    rng = random.Random(a.seed)
    log, step, t0 = [], 0, time.time()
    model.train()
    while step < total:
        order = list(range(len(train_ds)))
        rng.shuffle(order)
        for b in range(0, len(order), a.batch_size):
            if step >= total:
                break
            batch = order[b:b + a.batch_size]
            opt.zero_grad()
            tot = 0.0
            for i in batch:
                loss = completion_loss(model, train_ds[i]) / len(batch)
                loss.backward()
                tot += float(loss.detach())
            opt.step(); sched.step(); step += 1
            row = {'step': step, 'loss': round(tot, 4), 'lr': sched.get_last_lr()[0], 'elapsed_s': round(time.time() - t0, 1)}
            if val_ds is not None and (step % per_epoch == 0 or step == total):
                model.eval()
                with torch.no_grad():
                    row['eval_loss'] = round(sum(float(completion_loss(model, ex)) for ex in val_ds) / len(val_ds), 4)
                model.train()
            log.append(row)
            if step % a.logging_steps == 0:
                print(json.dumps(row), file=sys.stderr, flush=True)
    return step, log


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', help='export-training output folder (train.jsonl, validation.jsonl); required unless --merge-from')
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument('--gguf', help='GGUF file of the base model (dequantized to float32)')
    src.add_argument('--hf', help='Hugging Face checkpoint folder (config.json + *.safetensors)')
    p.add_argument('--tokenizer', default=TEMPLATE_DIR_DEFAULT, help='folder with tokenizer.json + tokenizer_config.json (Gemma 3 chat template)')
    p.add_argument('--out', required=True)
    p.add_argument('--r', type=int, default=8)
    p.add_argument('--alpha', type=int, default=16)
    p.add_argument('--dropout', type=float, default=0.05)
    p.add_argument('--target-modules', default='q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj')
    p.add_argument('--epochs', type=float, default=3)
    p.add_argument('--max-steps', type=int, default=-1)
    p.add_argument('--lr', type=float, default=2e-4)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--limit', type=int, help='use only the first N training examples')
    p.add_argument('--max-length', type=int, default=1024, help='truncate examples to this many tokens')
    p.add_argument('--logging-steps', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    p.add_argument('--fast', action='store_true', help='plain PyTorch loop instead of SFTTrainer: one example per forward, '
                   'logits only for the completion positions (logits_to_keep), gradient accumulation over --batch-size')
    p.add_argument('--label-only', action='store_true', help='loss on the target tokens only, not the closing <end_of_turn> '
                   '(classify: the engine scores label tokens only)')
    p.add_argument('--merge', action='store_true', help='also write merged/ (LoRA merged into the weights)')
    p.add_argument('--merge-from', metavar='LORA_DIR', help='no training: merge this trained PEFT LoRA (adapter_config.json + '
                   'adapter_model.safetensors) into the base weights and write OUT/merged/')
    p.add_argument('--gguf-out', help='with --merge: write the merged weights as this GGUF (F32 or F16, see --gguf-type)')
    p.add_argument('--gguf-type', choices=['f32', 'f16'], default='f32')
    a = p.parse_args()
    if not a.data and not a.merge_from:
        sys.exit('--data is required (the export-training folder), unless --merge-from')
    if a.gguf_out:
        sys.exit('--gguf-out: the merged-GGUF writer (tools/finetune/write_gguf.py) is not written yet; use --merge and convert merged/ with llama.cpp convert_hf_to_gguf.py meanwhile')

    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.time()
    tok = PreTrainedTokenizerFast.from_pretrained(a.tokenizer)
    if not tok.chat_template:
        sys.exit(f'{a.tokenizer}: tokenizer_config.json has no chat_template')
    if a.gguf:
        model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.gguf)), gguf_file=os.path.basename(a.gguf), dtype=torch.float32)
        # The GGUF loader has already dequantized every tensor to float32; drop its quantization
        # marker, which makes Trainer refuse to train ("QuantizationMethod.GGUF ... training").
        for attr in ('hf_quantizer', 'quantization_method'):
            if hasattr(model, attr):
                setattr(model, attr, None)
        model.is_quantized = False
        if hasattr(model.config, 'quantization_config'):
            del model.config.quantization_config
    else:
        model = AutoModelForCausalLM.from_pretrained(a.hf, dtype=torch.float32)
    print(f'loaded {type(model).__name__} in {time.time() - t0:.1f} s', file=sys.stderr)

    if a.merge_from:
        from peft import PeftModel
        if not os.path.isfile(os.path.join(a.merge_from, 'adapter_config.json')):
            sys.exit(f'{a.merge_from}: no adapter_config.json (expected a PEFT LoRA folder written by this script)')
        merged = PeftModel.from_pretrained(model, a.merge_from).merge_and_unload()
        mdir = os.path.join(a.out, 'merged')
        merged.save_pretrained(mdir, safe_serialization=True)
        tok.save_pretrained(mdir)
        print(f'merged {a.merge_from} into the base weights: {mdir} ({time.time() - t0:.1f} s)', file=sys.stderr)
        return
    train = load_jsonl(os.path.join(a.data, 'train.jsonl'), a.limit)
    val = load_jsonl(os.path.join(a.data, 'validation.jsonl'))
    if not train:
        sys.exit(f'{a.data}/train.jsonl has no examples')
    closing = not a.label_only
    train_ds = Dataset.from_list([encode_example(tok, m, closing) for m in train])
    val_ds = Dataset.from_list([encode_example(tok, m, closing) for m in val]) if val else None

    # Step-0 check of the weights and the masking: the base model's NLL (nats) of each completion
    # token of the first training examples. On the base (pt) Gemma 3 270M the label token costs
    # ~10-13 nats and the closing <end_of_turn> ~30 (the base model never emits it), so the first
    # logged loss (their mean) is ~20: expected, not a masking bug.
    initial = completion_nll(model, train_ds, 4)
    print('step-0 completion NLL per token (nats):', json.dumps(initial), file=sys.stderr)

    lora = LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=a.target_modules.split(','), task_type='CAUSAL_LM')
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()
    if a.fast:
        t1 = time.time()
        steps, log = fast_train(model, train_ds, val_ds, a)
        train_s = time.time() - t1
        seen = steps * a.batch_size
    else:
        cfg = SFTConfig(
            output_dir=os.path.join(a.out, 'checkpoints'), num_train_epochs=a.epochs, max_steps=a.max_steps,
            per_device_train_batch_size=a.batch_size, learning_rate=a.lr, lr_scheduler_type='linear', warmup_steps=0,
            logging_steps=a.logging_steps, save_strategy='no', eval_strategy='epoch' if val_ds is not None else 'no', report_to=[],
            completion_only_loss=True, max_length=a.max_length, seed=a.seed, use_cpu=not torch.cuda.is_available(),
            dataset_kwargs={'skip_prepare_dataset': False},
        )
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=train_ds, eval_dataset=val_ds, processing_class=tok)
        t1 = time.time()
        trainer.train()
        train_s = time.time() - t1
        steps = trainer.state.global_step
        seen = min(steps * a.batch_size, len(train) * a.epochs) if a.max_steps < 0 else steps * a.batch_size
        log = trainer.state.log_history
    print(f'trained {steps} steps on {len(train)} examples in {train_s:.1f} s ({100 * train_s / max(seen, 1):.1f} s per 100 examples seen)', file=sys.stderr)
    os.makedirs(a.out, exist_ok=True)
    model.save_pretrained(a.out)  # adapter_config.json + adapter_model.safetensors
    stats = {'initial_completion_nll': initial, 'examples': len(train), 'validation': len(val), 'steps': steps, 'train_seconds': round(train_s, 1),
             'seconds_per_100_examples_seen': round(100 * train_s / max(seen, 1), 1), 'fast': a.fast, 'label_only': a.label_only, 'log': log}
    if a.merge:
        merged = model.merge_and_unload()
        mdir = os.path.join(a.out, 'merged')
        merged.save_pretrained(mdir, safe_serialization=True)
        tok.save_pretrained(mdir)
        print(f'merged checkpoint: {mdir}', file=sys.stderr)
    with open(os.path.join(a.out, 'train_stats.json'), 'w') as f:
        json.dump(stats, f, indent=2)


if __name__ == '__main__':
    main()
