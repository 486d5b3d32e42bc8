"""Time mmsakd's CRDLoss against MMRazor's, forward + backward, in one run.

CRD (Tian, Krishnan & Isola, ICLR 2020, arXiv 1910.10699) contrasts every
sample with ``neg_num`` memory-bank rows. Both losses start from the same
bank and see the same embeddings and contrast indices; their calls are
alternated (A B A B ...) so that a slow phase of the machine hits both
alike, the warm-up call is dropped, and the medians, their ratio and the
largest relative difference of the loss values are reported with the
machine's thread count. At large ``--neg-num`` the loss values differ by
up to about 1e-4 relative: MMRazor's float32 NCE sum rounds its near-zero
terms, mmsakd's stays within about 1e-7 of the float64 value (see
``tests/test_models/test_losses/test_crd_loss.py``).

    python tools/analysis/benchmark_crd_loss.py [--batch 64]
        [--neg-num 16384] [--sample-n 50000] [--dim 128] [--repeats 7]
        [--device cpu] [--threads N] [--out results.json]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--neg-num', type=int, default=16384)
    parser.add_argument('--sample-n', type=int, default=50000)
    parser.add_argument('--dim', type=int, default=128)
    parser.add_argument(
        '--repeats',
        type=int,
        default=7,
        help='timed calls of each loss (plus one warm-up)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--out', default=None, help='write results as JSON')
    args = parser.parse_args(argv)
    for key in ('batch', 'neg_num', 'sample_n', 'dim', 'repeats'):
        if getattr(args, key) < 1:
            parser.error(f'--{key.replace("_", "-")} must be >= 1, got '
                         f'{getattr(args, key)}')
    if args.batch > args.sample_n:
        parser.error(f'--batch ({args.batch}) must not exceed --sample-n '
                     f'({args.sample_n}): the batch holds distinct samples')
    return args


def make_batch(args, generator):
    from mmengine.structures import BaseDataElement
    s = F.normalize(
        torch.randn(args.batch, args.dim, generator=generator), dim=1)
    t = F.normalize(
        torch.randn(args.batch, args.dim, generator=generator), dim=1)
    idx = torch.randperm(args.sample_n, generator=generator)[:args.batch]
    negatives = torch.randint(
        args.sample_n, (args.batch, args.neg_num), generator=generator)
    samples = [
        BaseDataElement(
            sample_idx=idx[i],
            contrast_sample_idxs=torch.cat([idx[i:i + 1], negatives[i]]))
        for i in range(args.batch)
    ]
    return s, t, samples


def time_call(loss, s, t, samples, device) -> tuple:
    s = s.to(device).requires_grad_()
    t = t.to(device).requires_grad_()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    value = loss(s, t, samples).sum()
    value.backward()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, value.item()


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # MMRazor needs mmsakd's compat layer first
    import mmsakd  # noqa: F401  isort:skip
    from mmrazor.models.losses import CRDLoss as MMRazorCRDLoss

    from mmsakd.models.losses import CRDLoss
    device = torch.device(args.device)
    sizes = dict(
        neg_num=args.neg_num, sample_n=args.sample_n, dim_out=args.dim)
    theirs = MMRazorCRDLoss(**sizes).to(device)
    ours = CRDLoss(**sizes).to(device)
    ours.load_state_dict(theirs.state_dict())
    losses = {'mmrazor': theirs, 'mmsakd': ours}
    times = {name: [] for name in losses}
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    for call in range(args.repeats + 1):
        s, t, samples = make_batch(args, generator)
        values = {}
        for name, loss in losses.items():
            seconds, values[name] = time_call(loss, s, t, samples, device)
            if call:  # the first call is the warm-up
                times[name].append(seconds)
        worst = max(
            worst,
            abs(values['mmsakd'] - values['mmrazor']) / abs(values['mmrazor']))
    medians = {name: statistics.median(v) for name, v in times.items()}
    results = dict(
        **{
            f'{name}_median_s': m
            for name, m in medians.items()
        },
        ratio=medians['mmrazor'] / medians['mmsakd'],
        max_relative_loss_difference=worst,
        **vars(args))
    results['threads'] = torch.get_num_threads()
    print(f'CRDLoss forward + backward, B={args.batch}, '
          f'{args.neg_num} negatives, {args.sample_n} x {args.dim} bank, '
          f'{results["threads"]} threads, {device}, median of '
          f'{args.repeats}:\n'
          f'  MMRazor {1000 * medians["mmrazor"]:.1f} ms, '
          f'mmsakd {1000 * medians["mmsakd"]:.1f} ms, '
          f'ratio {results["ratio"]:.2f}; largest relative loss difference '
          f'{worst:.1e}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
