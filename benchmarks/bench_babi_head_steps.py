"""How many steps the integrate-and-fire head (g and f, ``IFHead``) of the full bAbI Relational Network
needs: on the first 15 test questions of tasks 2, 4, 14, 15, 17 and 19, the answers of the ReLU head
(kernel encoders) against the spiking head at 30 / 100 steps and calibration percentiles 99.9 / 99 / 95
(docs/babi.md, "Every stage spiking"). Uses ``benchmarks/runs/babi-ahp/best.pt``.

    PYTHONPATH=python python benchmarks/bench_babi_head_steps.py   # from the repository root, ../shared/data beside it
"""
import numpy as np, torch, time, warnings
warnings.simplefilter("ignore")
from ahpsim.torch.trainer import load_checkpoint, load_model
from ahpsim.torch.tasks import make_task
from ahpsim.torch.relational import IFHead, KernelRelationalNetwork
torch.set_num_threads(1)
ck = load_checkpoint("benchmarks/runs/babi-ahp/best.pt"); model = load_model(ck); model.eval()
task = make_task("babi", root="../shared/data")
calib,_,_ = task.train.get(np.arange(0, len(task.train), len(task.train)//1000))
idx = np.concatenate([np.nonzero(task.test.groups == t)[0][:15] for t in (2, 4, 14, 15, 17, 19)])
batch, ans, _ = task.test.get(idx); ans = ans.numpy()
relu = KernelRelationalNetwork(model)(batch).logits.argmax(1)
print("relu", np.mean(relu == ans))
for steps, pct in ((30, 99.9), (30, 99.0), (100, 99.9), (100, 99.0), (30, 95.0)):
    t = time.time()
    k = KernelRelationalNetwork(model, head=IFHead(model, calib, steps=steps, percentile=pct))
    p = k(batch).logits.argmax(1)
    print(steps, pct, "acc", round(np.mean(p == ans), 3), "same", round(np.mean(p == relu), 3),
          {k2: round(v, 4) for k2, v in k.last_head_stats.items() if "rate" in k2}, round(time.time() - t, 1), flush=True)
