"""The engine that spreads a job's items over processes: PyTorch Lightning's Trainer.predict.

One process per device (the ddp strategy: Lightning starts the other processes of a node itself,
or torchrun / SLURM start every process), each with its own copy of the model. Lightning's
predict sampler gives every process every world_size-th item (never a repeated one); an item's
video depends only on the item (its seed, settings and the model), not on which process made it
or when. Each finished item is written at once by the process that made it (ItemWriter, with
job.save_item); after every process has finished, rank 0 builds the shared outputs from the item
files (job.collect). Rank 0 shows one bar over the job's items, counted from the files of every
process, and the bar over the denoising steps of its current item.
"""
import os
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning_fabric.utilities.exceptions import MisconfigurationException
from lightning_fabric.utilities.rank_zero import rank_zero_only
from pytorch_lightning.callbacks import BasePredictionWriter, Callback
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .checks import InputError, Interrupted, one_line, resolve_device
from .job import Item, Job, JobResult, collect, job_extra, save_item

ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps")
STRATEGIES = ("auto", "ddp")
# (name, default, help): Lightning's own flag names, shared by the sampling scripts
LAUNCH_FLAGS = [
    ("accelerator", None, f"Lightning accelerator: {', '.join(ACCELERATORS)} (with any of these four flags the job runs on "
                          "Lightning's Trainer, one process per device; default auto)"),
    ("devices", None, "devices (processes) per node: a count, a list of device indices such as 0,1,3, or auto (default 1)"),
    ("num_nodes", None, "nodes of a multi-node run started by torchrun or SLURM (default 1)"),
    ("strategy", None, "ddp (one process per device; the default with more than one) or auto"),
]


def is_rank_zero() -> bool:
    """Whether this process is rank 0 of its run, from the launcher's environment (RANK,
    LOCAL_RANK, SLURM_PROCID as Lightning reads them, and NODE_RANK); True alone."""
    return getattr(rank_zero_only, "rank", 0) == 0 and os.environ.get("NODE_RANK", "0") == "0"


# --------------------------------------------------------------------------------------------------
# Where the job runs


@dataclass(frozen=True)
class Launch:
    """How a job is spread, in Lightning's terms. `devices` is a count, "auto" or device indices;
    `processes` the processes of the whole run."""

    accelerator: str = "cpu"
    devices: Union[int, str, Tuple[int, ...]] = 1
    num_nodes: int = 1
    strategy: str = "auto"

    @property
    def device_type(self) -> str:
        return "cuda" if self.accelerator in ("cuda", "gpu") else self.accelerator

    @property
    def device(self) -> str:
        """What the job is planned for: the one device of a single process, else the device type."""
        if self.device_type == "cuda" and isinstance(self.devices, tuple) and len(self.devices) == 1 and self.num_nodes == 1:
            return f"cuda:{self.devices[0]}"
        return self.device_type

    @property
    def per_node(self) -> int:
        if isinstance(self.devices, tuple):
            return len(self.devices)
        if self.devices == "auto":
            return torch.cuda.device_count() if self.device_type == "cuda" else 1
        return int(self.devices)

    @property
    def processes(self) -> int:
        return self.per_node * self.num_nodes


def launch_on(device: torch.device) -> Launch:
    """One process on `device` (the scripts without Lightning's flags)."""
    if device.type == "cuda":
        return Launch("cuda", (device.index or 0,))
    return Launch(device.type, 1)


def _devices(value: Any, device_type: str) -> Union[int, str, Tuple[int, ...]]:
    """--devices as Lightning takes it: a count >= 1, "auto" (also -1), or distinct CUDA device indices."""
    text = str(value).strip().strip("[]").replace(" ", "") if not isinstance(value, (list, tuple)) else None
    if isinstance(value, (list, tuple)) or (text is not None and "," in text):
        parts = [str(p) for p in value] if text is None else [p for p in text.split(",") if p != ""]
        if not parts or not all(p.isdigit() for p in parts) or len(set(parts)) != len(parts):
            raise InputError(f"--devices {value}: a list holds distinct device indices, such as 0,1,3")
        if device_type != "cuda":
            raise InputError(f"--devices {value}: a list of device indices needs --accelerator cuda; for {device_type} give a count")
        indices = tuple(int(p) for p in parts)
        if max(indices) >= torch.cuda.device_count():
            raise InputError(f"--devices {value}: this machine has {torch.cuda.device_count()} CUDA devices (0 to {torch.cuda.device_count() - 1})")
        return indices
    if text in ("auto", "-1"):
        return "auto"
    if text is None or not text.lstrip("-").isdigit() or int(text) < 1:
        raise InputError(f"--devices {value}: give a count of 1 or more, a list of device indices (0,1) or auto")
    if device_type == "cuda" and int(text) > torch.cuda.device_count():
        raise InputError(f"--devices {value}: this machine has {torch.cuda.device_count()} CUDA devices")
    return int(text)


def check_launch(accelerator: Any = None, devices: Any = None, num_nodes: Any = None, strategy: Any = None,
                 device: Any = None) -> Launch:
    """The Launch of Lightning's flags as given (None: not given), checked before anything runs;
    without them one process on `device` (checks.resolve_device)."""
    if accelerator is None and devices is None and num_nodes is None and strategy is None:
        return launch_on(resolve_device(device))
    if device is not None:
        raise InputError("--device picks the device of a single process; with --accelerator, --devices, --num_nodes "
                         "or --strategy leave it out (each process takes its own device)")
    accelerator = str(accelerator or "auto").lower()
    if accelerator not in ACCELERATORS:
        raise InputError(f"unknown accelerator {accelerator!r}; choose one of {', '.join(ACCELERATORS)}")
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator in ("cuda", "gpu") and not torch.cuda.is_available():
        raise InputError(f"--accelerator {accelerator}: no CUDA device is available on this machine "
                         "(torch.cuda.is_available() is False); use --accelerator cpu")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise InputError("--accelerator mps: MPS is not available on this machine; use --accelerator cpu")
    device_type = "cuda" if accelerator in ("cuda", "gpu") else accelerator
    count = _devices(1 if devices is None else devices, device_type)
    nodes = str(1 if num_nodes is None else num_nodes).strip()
    if not nodes.isdigit() or int(nodes) < 1:
        raise InputError(f"--num_nodes {num_nodes}: give a count of 1 or more")
    launch = Launch(accelerator, count, int(nodes), "auto")
    check_cluster(launch)
    if strategy is None:
        return Launch(accelerator, count, int(nodes), "ddp" if launch.processes > 1 else "auto")
    if str(strategy).lower() not in STRATEGIES:
        raise InputError(f"unknown strategy {strategy!r} for sampling; choose ddp (one process per device, the default "
                         "with more than one) or auto")
    return Launch(accelerator, count, int(nodes), str(strategy).lower())


def check_cluster(launch: Launch) -> None:
    """Refuse a launch its starter cannot give: several nodes with nothing starting the other nodes'
    processes, or another process count than torchrun or SLURM started."""
    started = None
    if TorchElasticEnvironment.detect():
        started = ("torchrun", int(os.environ["WORLD_SIZE"]))
    elif SLURMEnvironment.detect():
        started = ("SLURM", int(os.environ["SLURM_NTASKS"]))
    if started is None and launch.num_nodes > 1 and "NODE_RANK" not in os.environ:
        raise InputError(f"--num_nodes {launch.num_nodes}: start the command on every node with torchrun or srun "
                         "(or set NODE_RANK, MASTER_ADDR and MASTER_PORT on each); alone it would wait for the other nodes")
    if started is not None and launch.devices != "auto" and started[1] != launch.processes:
        raise InputError(f"{started[0]} started {started[1]} processes but --devices {launch.per_node} x --num_nodes "
                         f"{launch.num_nodes} asks for {launch.processes}; make them agree")


def check_job_folder(launch: Launch, output_folder: Any, collect_only: bool = False) -> None:
    """A run of several processes, and --collect_only, need the --output_folder every process shares."""
    if output_folder is None and (launch.processes > 1 or collect_only):
        why = "--collect_only builds the outputs of an earlier job" if collect_only else \
            f"the {launch.processes} processes of this run write into one folder"
        raise InputError(f"{why}: give its --output_folder")
    if collect_only and launch.processes > 1:
        raise InputError("--collect_only runs in one process: leave out --devices and --num_nodes")


def make_trainer(launch: Launch, callbacks: Sequence[Callback] = ()) -> pl.Trainer:
    """Lightning's Trainer for `launch`, with no logger, checkpoints or bar of its own."""
    devices = list(launch.devices) if isinstance(launch.devices, tuple) else launch.devices
    try:
        return pl.Trainer(accelerator=launch.accelerator, devices=devices, num_nodes=launch.num_nodes, strategy=launch.strategy,
                          logger=False, enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                          callbacks=list(callbacks))
    except (MisconfigurationException, ValueError, RuntimeError) as err:
        raise InputError(f"cannot run on {launch.accelerator} with devices={launch.devices}, num_nodes={launch.num_nodes}, "
                         f"strategy={launch.strategy}: {one_line(err)}") from None


# --------------------------------------------------------------------------------------------------
# Lightning's pieces


class ItemIndices(Dataset):
    """The indices (in job.items) of the items to sample."""

    def __init__(self, indices: List[int]):
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position: int) -> int:
        return self.indices[position]


def _one(batch: List[int]) -> int:
    return batch[0]


class JobData(pl.LightningDataModule):
    """The items to sample, one per batch."""

    def __init__(self, todo: List[Item]):
        super().__init__()
        self.indices = [item.index for item in todo]

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(ItemIndices(self.indices), batch_size=1, shuffle=False, collate_fn=_one)


class JobModule(pl.LightningModule):
    """A VideoPipeline on this process's device; predict_step samples one item and returns (item,
    its conditioning image, the VideoOutput), or None for an item another process has finished meanwhile."""

    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.pipe = None
        self._image = (None, None)  # (JobImage, ConditioningImage): items come image by image

    def setup(self, stage: str) -> None:
        if self.pipe is None:
            self.pipe = self.job.load(self.trainer.strategy.root_device, progress=self.trainer.is_global_zero)

    def predict_step(self, index: int, batch_idx: int = 0) -> Optional[Tuple[Item, Any, Any]]:
        item = self.job.items[index]
        if os.path.exists(item.path(self.job.folder, ".json")):
            return None
        if self._image[0] is not item.image:
            self._image = (item.image, item.image.load())
        try:
            return item, self._image[1], self.pipe.sample(self._image[1], item.cell.settings)
        except KeyboardInterrupt:
            raise Interrupted() from None


class ItemWriter(BasePredictionWriter):
    """Writes each item as soon as it is sampled (job.save_item); waits for every process at the end."""

    def __init__(self, job: Job, say: Callable[[str], None]):
        super().__init__(write_interval="batch")
        self.job, self.say = job, say
        self.extra = job_extra(job)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx) -> None:
        if prediction is None:
            return
        item, image, output = prediction
        if save_item(self.job, item, image, output, self.extra) is not None:
            rank = f"rank {trainer.global_rank}: " if trainer.world_size > 1 else ""
            with tqdm.external_write_mode():
                self.say(f"{rank}wrote {item.path(self.job.folder, '.mp4')}")

    def on_predict_end(self, trainer, pl_module) -> None:
        trainer.strategy.barrier("every item written")


class ItemProgress(Callback):
    """On rank 0, one bar over the job's items: finished / total, from the item files every process writes."""

    def __init__(self, job: Job, todo: List[Item], poll_s: float = 1.0):
        self.job, self.todo, self.poll_s = job, todo, poll_s
        self.bar, self.stop, self.thread, self.lock = None, threading.Event(), None, threading.Lock()

    def _refresh(self) -> None:
        names = set(os.listdir(self.job.folder)) if os.path.isdir(self.job.folder) else set()
        done = len(self.job.items) - len(self.todo) + sum(item.id + ".json" in names for item in self.todo)
        with self.lock:
            self.bar.update(done - self.bar.n)

    def _poll(self) -> None:
        while not self.stop.wait(self.poll_s):
            self._refresh()

    def on_predict_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self.bar = tqdm(total=len(self.job.items), initial=len(self.job.items) - len(self.todo), desc="Items", unit="video",
                            position=0)
            self.thread = threading.Thread(target=self._poll, name="item-progress", daemon=True)
            self.thread.start()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.bar is not None:
            self._refresh()

    def on_predict_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            self.stop.set()
            self.thread.join()
            self._refresh()
            self.bar.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self.bar is not None:
            self.stop.set()
            self.bar.close()


# --------------------------------------------------------------------------------------------------
# Running a job


def run_job(job: Job, launch: Launch, say: Callable[[str], None] = lambda line: None) -> Optional[JobResult]:
    """Sample the items of `job` not yet finished on `launch` (Trainer.predict, building the model
    in each process only if there is an item to sample), then, on rank 0, collect the shared
    outputs. Returns the JobResult on rank 0, None on the other ranks. `say` receives one line
    per event (loading, resume, each item written)."""
    todo = job.todo()
    if job.finished and is_rank_zero():
        say(f"resume: {len(job.finished)} of {len(job.items)} items already done in {job.folder}")
    if todo:
        if is_rank_zero():
            where = f"{launch.processes} processes ({launch.accelerator})" if launch.processes > 1 else str(job.pipe.device)
            say(f"Loading model {job.pipe.version} ({job.pipe.ckpt_path or 'no checkpoint'}) on {where} ...")
        trainer = make_trainer(launch, [ItemWriter(job, say), ItemProgress(job, todo)])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")  # items are read by predict_step
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)  # inside Lightning
            trainer.predict(JobModule(job), datamodule=JobData(todo), return_predictions=False)
        if not trainer.is_global_zero:
            return None
    return collect(job, say)
