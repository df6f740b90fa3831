#!/bin/bash
# One GPU lease: what no lease has measured yet, side by side on one GPU.
#   1. `pytest -m gpu` (all 9 passed on the 2026-11-28 lease, the CUDA-graph run included);
#   2. issue 26's benchmark 1 at full width: SSGD against SGD + magnitude pruning and
#      L1-regularised SGD on all 50,000 CIFAR-10 images, VGG11@1, the CPU setting's 20 epochs and
#      decay (benchmarks/ssgd.py, one process per method and seed: 12 side by side, each launch-bound
#      at batch 128, so together they fill the GPU one process cannot; a seed that finishes is kept);
#   3. the batch-128 cells of the trainer with CUDA graphs (benchmarks/throughput.py --matrix),
#      after the rest, alone on the GPU, if time is left.
# The 2026-11-28 lease ran all three in 497 s (results: ssgd_cifar10_gpu.md, throughput_matrix_cuda_b128.md);
# a rerun retrains no row already on disk.
# Every step has a deadline inside LIMIT seconds; what finished comes back in $OUT/results.tgz.
#
# Carried to the device machine beside the working tree: .gpu/cifar10-jpeg.tar.gz (the shared
# archive; it is copied to ../.gpudata/, the dataset name the GPU runs on disk were made with)
# and .whl/ (wheels of the packages its image lacks: optuna, torch-pruning, foolbox and their
# dependencies). Run as `bash benchmarks/gpu_lease.sh 2>&1 | tee $OUT/log.txt`; LIMIT (seconds,
# default 570), TP (the throughput step's share, default 90) and DEV (default cuda) can be set.
# Rows already on disk are kept, so a later lease extends them instead of redoing them.
# (Earlier leases' steps: `git log -p benchmarks/gpu_lease.sh`.)
set -u
T0=$SECONDS; LIMIT=${LIMIT:-570}; DEV=${DEV:-cuda}; TP=${TP:-90}
rm -rf /tmp/logs; mkdir -p $OUT /tmp/logs; touch /tmp/stamp
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1; export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
mkdir -p ../.gpudata; [ -e ../.gpudata/cifar10-jpeg.tar.gz ] || cp .gpu/cifar10-jpeg.tar.gz ../.gpudata/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; nproc
python3 -c "import sys, torch, timm, optuna, torch_pruning, foolbox; print(sys.version.split()[0], torch.__version__, timm.__version__, optuna.__version__, torch_pruning.__version__, foolbox.__version__, torch.cuda.is_available())"
DATA=../.gpudata/cifar10-jpeg.tar.gz
echo "== decode at $((SECONDS-T0)) s"
python3 -c "from growsearch.data.dataset import create_dataset as c; d = c('imagefolder:$DATA'); print(len(d.x_train), len(d.x_test))"
echo "== side by side at $((SECONDS-T0)) s"
LEFT=$((LIMIT - TP - (SECONDS - T0)))
timeout -k 10 $LEFT python3 -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider > $OUT/pytest_gpu.txt 2>&1 &
for m in sgd l1 ssgd-weights ssgd-filters; do for s in 0 1 2; do
  timeout -k 10 $LEFT python3 benchmarks/ssgd.py --dataset "imagefolder:$DATA" --arch vgg11@1 --device $DEV --threads 1 --methods $m --seeds $((s + 1)) --first-seed $s --name ssgd_cifar10_gpu > /tmp/logs/ssgd_${m}_s$s.txt 2>&1 &
done; done
while [ -n "$(jobs -r)" ]; do sleep 20; echo "t=$((SECONDS-T0)) s: $(find benchmarks/results/ssgd_cifar10_gpu -newer /tmp/stamp -name '*.json' 2>/dev/null | wc -l) new rows; $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"; done
wait
echo "== throughput at $((SECONDS-T0)) s"
LEFT=$((LIMIT - (SECONDS - T0)))
[ $LEFT -gt 30 ] && timeout -k 5 $LEFT python3 benchmarks/throughput.py --matrix --device $DEV --data "imagefolder:$DATA?train_per_class=2500" --archs vgg19 --batches 128 --graphs eager,reduce-overhead --epochs 2 --out $OUT/throughput_matrix_cuda_b128.md
echo "== done at $((SECONDS-T0)) s"; for f in /tmp/logs/*.txt $OUT/pytest_gpu.txt; do echo "-- $f"; tail -n 3 "$f"; done
python3 benchmarks/ssgd.py --dataset "imagefolder:$DATA" --arch vgg11@1 --device $DEV --name ssgd_cifar10_gpu --report-only > /dev/null 2>&1
find benchmarks/results/ssgd_cifar10_gpu* -newer /tmp/stamp > /tmp/list 2>/dev/null
tar czf $OUT/results.tgz -T /tmp/list /tmp/logs 2>&1 | grep -v "Removing leading"
ls -la $OUT
