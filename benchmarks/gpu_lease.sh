#!/bin/bash
# One GPU lease: where the trainer's step time goes (benchmarks/gpu_step.py, alone on the GPU),
# then side by side `pytest -m gpu`, the full-width lever rows not yet on disk (one process per
# seed) and the GPU setting of grow-then-shrink (benchmarks/shrink.py: each subnet frontier in a
# process of its own, one process per seed for the variant runs). Every step has a deadline
# inside LIMIT seconds; what finished comes back in $OUT/results.tgz.
#
# Carried to the device machine beside the working tree: .gpu/cifar10-jpeg.tar.gz (the shared
# archive; it is copied to ../.gpudata/, the dataset name the GPU runs on disk were made with)
# and .whl/ (wheels of the packages its image lacks: optuna, torch-pruning, foolbox and their
# dependencies). Run as `bash benchmarks/gpu_lease.sh 2>&1 | tee $OUT/log.txt`; LIMIT (seconds,
# default 575), GS (gpu_step.py's share, default 110) and DEV (default cuda) can be set.
# Runs already on disk are kept, so a later lease extends the seeds instead of redoing them.
# (The throughput matrix of benchmarks/results/throughput_matrix_cuda.md came from an earlier
# version of this script: `git log -p benchmarks/gpu_lease.sh`.)
set -u
T0=$SECONDS; LIMIT=${LIMIT:-575}; DEV=${DEV:-cuda}; GS=${GS:-110}
mkdir -p $OUT /tmp/logs; touch /tmp/stamp
if [ -d .whl ]; then python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1; export PYTHONPATH=/tmp/site:$PWD; else export PYTHONPATH=$PWD; fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
mkdir -p ../.gpudata; [ -e ../.gpudata/cifar10-jpeg.tar.gz ] || cp .gpu/cifar10-jpeg.tar.gz ../.gpudata/
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; nproc
python3 -c "import sys, torch, timm, optuna, torch_pruning, foolbox; print(sys.version.split()[0], torch.__version__, timm.__version__, optuna.__version__, torch_pruning.__version__, foolbox.__version__, torch.cuda.is_available())"
DATA=../.gpudata/cifar10-jpeg.tar.gz
echo "== decode at $((SECONDS-T0)) s"
python3 -c "from growsearch.data.dataset import create_dataset as c; d = c('imagefolder:$DATA'); print(len(d.x_train), len(d.x_test))"
echo "== gpu_step at $((SECONDS-T0)) s"
(cd benchmarks && timeout -k 5 $GS python3 gpu_step.py --device $DEV --compile --out $OUT/gpu_step_cuda.md)
echo "== side by side at $((SECONDS-T0)) s"
GA="--data $DATA --name cifar10_gpu --per-class 0 --width 1 --budgets 4 8 16 --vgg16-budgets 4 8 --pruned-budgets 4 8 --levels short long longer --resized-budgets 4 8 --device $DEV"
SA="--data $DATA --name cifar10_gpu --per-class 0 --width 1 --batch 512 --total 9 --budgets 3 6 9 --full-frontier frontiers/shrink_vgg16 --device $DEV --no-report"
LEFT=$((LIMIT - (SECONDS - T0)))
timeout -k 10 $LEFT python3 -m pytest -m gpu tests/test_gpu.py -q -p no:cacheprovider > $OUT/pytest_gpu.txt 2>&1 &
for s in 0 1 2; do timeout -k 10 $LEFT python3 benchmarks/cifar10.py $GA --phases levers --lever-seeds $s > /tmp/logs/levers_s$s.txt 2>&1 & done
timeout -k 10 $LEFT python3 benchmarks/shrink.py $SA --train full-frontier > /tmp/logs/shrink_full.txt 2>&1 &
for i in 0 1 2; do timeout -k 10 $LEFT python3 benchmarks/shrink.py $SA --train frontier --frontier-archs $i > /tmp/logs/shrink_f$i.txt 2>&1 & done
for s in 0 1 2; do timeout -k 10 $LEFT python3 benchmarks/shrink.py $SA --train runs --run-seeds $s > /tmp/logs/shrink_s$s.txt 2>&1 & done
while [ -n "$(jobs -r)" ]; do sleep 20; echo "t=$((SECONDS-T0)) s: $(find benchmarks/results/cifar10_gpu -newer /tmp/stamp -name result.json | wc -l) new results; $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"; done
wait
echo "== done at $((SECONDS-T0)) s"; for f in /tmp/logs/*.txt $OUT/pytest_gpu.txt; do echo "-- $f"; tail -n 3 "$f"; done
find benchmarks/results/cifar10_gpu -newer /tmp/stamp \( -name '*.json' -o -name '*.md' \) > /tmp/list
tar czf $OUT/results.tgz -T /tmp/list /tmp/logs 2>&1 | grep -v "Removing leading"
ls -la $OUT
