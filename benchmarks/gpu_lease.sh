#!/bin/bash
# One GPU lease: pytest -m gpu, the throughput matrix (alone on the GPU), then side by side the
# full-width lever ablation (one process per seed), its progressive-resizing reference and the
# SSGD Table 2 row. Every step has a deadline inside LIMIT seconds; what finished comes back.
#
# Carried to the device machine beside the working tree: .gpu/cifar10-jpeg.tar.gz (the shared
# archive; it is copied to ../.gpudata/, the dataset name the GPU runs on disk were made with)
# and .whl/ (wheels of the packages its image lacks: optuna, torch-pruning, foolbox and their
# dependencies). Run as `bash benchmarks/gpu_lease.sh 2>&1 | tee $OUT/log.txt`; LIMIT (seconds,
# default 565), TP (the throughput matrix's share, default 190) and DEV (default cuda) can be set.
# Runs already on disk are kept, so a later lease extends the lever seeds instead of redoing them.
set -u
T0=$SECONDS; LIMIT=${LIMIT:-565}; DEV=${DEV:-cuda}; TP=${TP:-190}
mkdir -p $OUT /tmp/logs; touch /tmp/stamp
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1; export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p ../.gpudata; [ -e ../.gpudata/cifar10-jpeg.tar.gz ] || cp .gpu/cifar10-jpeg.tar.gz ../.gpudata/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; nproc
python3 -c "import sys, torch, timm, optuna, torch_pruning, foolbox; print(sys.version.split()[0], torch.__version__, timm.__version__, optuna.__version__, torch_pruning.__version__, foolbox.__version__, torch.cuda.is_available())"
DATA=../.gpudata/cifar10-jpeg.tar.gz
echo "== decode at $((SECONDS-T0)) s"
python3 -c "from growsearch.data.dataset import create_dataset as c; d = c('imagefolder:$DATA'); print(len(d.x_train), len(d.x_test))"
echo "== throughput at $((SECONDS-T0)) s"
timeout -k 10 $TP python3 benchmarks/throughput.py --matrix --device $DEV --data "imagefolder:$DATA?train_per_class=2500" --archs vgg19,resnet18 --batches 512,128 --epochs 2 --out $OUT/throughput_matrix_cuda.md
echo "== side by side at $((SECONDS-T0)) s"
GA="--data $DATA --name cifar10_gpu --per-class 0 --width 1 --budgets 4 8 16 --vgg16-budgets 4 8 --pruned-budgets 4 8 --levels short long longer --resized-budgets 4 8 --device $DEV"
LEFT=$((LIMIT - (SECONDS - T0)))
timeout -k 10 $LEFT python3 -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider > $OUT/pytest_gpu.txt 2>&1 &
timeout -k 10 $LEFT python3 benchmarks/cifar10.py $GA --phases resized > /tmp/logs/resized.txt 2>&1 &
for s in 0 1 2; do timeout -k 10 $LEFT python3 benchmarks/cifar10.py $GA --phases levers --lever-seeds $s > /tmp/logs/levers_s$s.txt 2>&1 & done
timeout -k 10 $LEFT python3 benchmarks/cifar10.py $GA --phases ssgd > /tmp/logs/ssgd.txt 2>&1 &
while [ -n "$(jobs -r)" ]; do sleep 20; echo "t=$((SECONDS-T0)) s: $(find benchmarks/results/cifar10_gpu -newer /tmp/stamp -name result.json | wc -l) new results; $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"; done
wait
echo "== done at $((SECONDS-T0)) s"; for f in /tmp/logs/*.txt $OUT/pytest_gpu.txt; do echo "-- $f"; tail -n 4 "$f"; done
find benchmarks/results/cifar10_gpu benchmarks/results/cifar10_gpu.md -newer /tmp/stamp \( -name '*.json' -o -name '*.md' \) > /tmp/list
tar czf $OUT/results.tgz -T /tmp/list /tmp/logs 2>&1 | grep -v "Removing leading"
ls -la $OUT
