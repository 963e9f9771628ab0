"""`memalpha train step-check`: one update of the recipe's actor through verl's own FSDP2 engine, on CPU.

The rows are what a rollout of the recipe produced (`memalpha train dry-run` writes them to
rows.jsonl: prompt ids, response ids, GRPO advantage). The engine is verl 0.9.1's
`FSDPEngineWithLMHead`, built from the recipe's actor config the way verl's actor worker builds it,
with only what a CPU needs changed (`cpu_platform`, FSDP2 on gloo, no offload, fp32, sdpa
attention, no torch.compile). It computes the old log-probs (`infer_batch`), runs one optimiser step
with verl's `ppo_loss` (`train_batch`) and computes the log-probs again. Three checks:

- the log-probs: the engine's against a plain transformers forward of each row (packing, masks and
  the shift by one are verl's; the reference is independent of them);
- the first step's loss against a value computed by hand: at the first step the new and old policy
  are the same, so the PPO ratio is 1, the KL to the reference is 0 and the loss is −Σ w_r·A_r,
  with the row weights w_r of `loss_agg_mode`;
- the direction: the update raises the advantage-weighted log-probability it optimises (when any
  advantage is not 0). Per row, the report shows whether the row's mean log-probability moved the
  way its advantage says.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tasks.atomic import replace_file
from tasks.errors import TaskError
from tasks.strict_json import read_records

LOGPROB_TOLERANCE = 1e-3  # engine vs transformers, per token (float32 on CPU agrees to ~1e-6)
LOSS_TOLERANCE = 1e-5
SUPPORTED_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
ROW_FIELDS = ("key", "prompt_ids", "response_ids", "advantage")


@dataclass(frozen=True)
class StepRow:
    """One training row: its prompt and response token ids and its (row-constant) GRPO advantage."""

    key: str
    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float


@dataclass(frozen=True)
class RowMove:
    """How one row's mean response log-probability moved in the update."""

    key: str
    tokens: int
    advantage: float
    old_logprob: float  # mean over the response tokens
    new_logprob: float

    @property
    def moved_with_advantage(self) -> bool | None:
        """True when the log-probability moved the way the advantage says; None for a zero advantage."""
        if self.advantage == 0.0:
            return None
        return (self.new_logprob - self.old_logprob) * self.advantage > 0


@dataclass
class StepReport:
    """One update under one `loss_agg_mode`: the checks' inputs and outcomes."""

    loss_agg_mode: str
    lr: float
    engine_loss: float
    expected_loss: float
    logprob_gap: float  # max |engine − transformers| over all response tokens
    grad_norm: float
    rows: list[RowMove] = field(default_factory=list)

    @property
    def advantage_per_row(self) -> float:
        return sum(r.advantage for r in self.rows) / len(self.rows)

    @property
    def advantage_per_token(self) -> float:
        return sum(r.advantage * r.tokens for r in self.rows) / sum(r.tokens for r in self.rows)

    @property
    def objective_change(self) -> float:
        """Σ w_r·A_r·Δ(mean log-prob): what this update's loss asks to raise (first order)."""
        weights = row_weights([r.tokens for r in self.rows], self.loss_agg_mode)
        return sum(w * r.advantage * (r.new_logprob - r.old_logprob) for w, r in zip(weights, self.rows, strict=True))

    def rows_with_advantage(self) -> tuple[int, int]:
        """(rows that moved the way their advantage says, rows with a non-zero advantage)."""
        judged = [r.moved_with_advantage for r in self.rows if r.moved_with_advantage is not None]
        return sum(judged), len(judged)

    def failures(self) -> list[str]:
        """What went wrong, in words; empty when every check passed."""
        out = []
        if self.logprob_gap > LOGPROB_TOLERANCE:
            out.append(f"log-probs: the engine differs from transformers by {self.logprob_gap:.2e}")
        if not math.isclose(self.engine_loss, self.expected_loss, abs_tol=LOSS_TOLERANCE, rel_tol=LOSS_TOLERANCE):
            out.append(f"first-step loss: the engine's {self.engine_loss:.6f}, by hand {self.expected_loss:.6f}")
        if any(r.advantage for r in self.rows) and not self.objective_change > 0:
            out.append(f"direction: the advantage-weighted log-probability changed by {self.objective_change:.3e}")
        return out

    def to_json(self) -> dict[str, Any]:
        moved, judged = self.rows_with_advantage()
        return {
            **{k: v for k, v in asdict(self).items() if k != "rows"},
            "rows": [{**asdict(r), "moved_with_advantage": r.moved_with_advantage} for r in self.rows],
            "advantage_per_row": self.advantage_per_row,
            "advantage_per_token": self.advantage_per_token,
            "objective_change": self.objective_change,
            "rows_with_advantage": [moved, judged],
            "failures": self.failures(),
        }


def row_weights(tokens: Sequence[int], mode: str) -> list[float]:
    """The weight of each row's mean per-token term in the loss (one mini-batch, one GPU), by hand
    from the definitions in verl's `agg_loss`; independent of verl's code."""
    if mode == "token-mean":  # every token of the mini-batch the same: a row weighs its length
        return [n / sum(tokens) for n in tokens]
    if mode == "seq-mean-token-mean":  # every row the same
        return [1 / len(tokens)] * len(tokens)
    if mode == "seq-mean-token-sum":  # a row's token sum, rows averaged
        return [n / len(tokens) for n in tokens]
    raise TaskError(f"loss_agg_mode {mode!r}: the step check knows {', '.join(SUPPORTED_MODES)}")


def expected_first_loss(rows: Sequence[StepRow], mode: str) -> float:
    """The first update's loss: ratio 1 and KL 0, so each token contributes −A, weighted by `mode`."""
    weights = row_weights([len(r.response_ids) for r in rows], mode)
    return -sum(w * r.advantage for w, r in zip(weights, rows, strict=True))


def load_rows(path: Path) -> list[StepRow]:
    """The rows of a rows.jsonl (`memalpha train dry-run` writes one); errors name the line and field."""
    if not path.is_file():
        raise TaskError(f"--rows {path}: no such file (run `memalpha train dry-run` first)")
    rows = []
    for number, obj in read_records(path):
        if not isinstance(obj, dict):
            raise TaskError(f"{path}, line {number}: expected a JSON object")
        missing = [f for f in ROW_FIELDS if f not in obj]
        if missing:
            raise TaskError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        for name in ("prompt_ids", "response_ids"):
            if not obj[name]:
                raise TaskError(f"{path}:{number}: field {name} is empty")
        rows.append(StepRow(str(obj["key"]), obj["prompt_ids"], obj["response_ids"], float(obj["advantage"])))
    if not rows:
        raise TaskError(f"{path}: no rows")
    return rows


def run_step_check(rows: Sequence[StepRow], cfg: DictConfig, modes: Sequence[str], *, lr: float) -> list[StepReport]:
    """One update per `loss_agg_mode` in `modes`, each from the start weights, of the actor `cfg`
    describes (a composed recipe config) on `rows`, on CPU."""
    from .cpu_platform import use_cpu_platform

    use_cpu_platform()  # before anything below imports verl's engine
    import torch.distributed as dist

    for mode in modes:
        row_weights([1], mode)  # an unknown mode fails before any engine starts
    model_config = _model_config(cfg)
    _check_vocabulary(rows, model_config.hf_config.vocab_size)
    reference = _transformers_logprobs(model_config, rows)
    reports = []
    with tempfile.TemporaryDirectory() as rendezvous:
        dist.init_process_group("gloo", init_method=f"file://{rendezvous}/store", rank=0, world_size=1)
        try:
            for mode in modes:
                reports.append(_one_update(rows, cfg, model_config, mode, lr, reference))
        finally:
            dist.destroy_process_group()
    return reports


def _one_update(
    rows: Sequence[StepRow], cfg: DictConfig, model_config: Any, mode: str, lr: float, reference: Sequence[Any]
) -> StepReport:
    import torch

    engine, loss_fn = _build_engine(cfg, model_config, mode, lr)
    batch = _batch(rows, engine)
    old = _response_logprobs(engine, batch)
    batch["old_log_probs"] = _nested([o.detach() for o in old])
    batch["ref_log_prob"] = _nested([o.detach() for o in old])  # the reference policy is the start policy
    batch["advantages"] = _nested([torch.full((len(r.response_ids),), r.advantage) for r in rows])
    _assign(batch, global_batch_size=len(rows))  # the mini-batch is every row, as on one GPU
    out = engine.train_batch(batch, loss_function=loss_fn)
    new = _response_logprobs(engine, batch)
    return StepReport(
        loss_agg_mode=mode,
        lr=lr,
        engine_loss=float(sum(out["loss"])),  # micro-batch losses are shares of the mini-batch loss
        expected_loss=expected_first_loss(rows, mode),
        logprob_gap=max(float((o - r).abs().max()) for o, r in zip(old, reference, strict=True)),
        grad_norm=float(out["metrics"]["grad_norm"]),
        rows=[
            RowMove(r.key, len(r.response_ids), r.advantage, float(o.mean()), float(n.mean()))
            for r, o, n in zip(rows, old, new, strict=True)
        ],
    )


def _model_config(cfg: DictConfig) -> Any:
    """verl's model config of the recipe's policy, with PyTorch's own attention (no flash-attn on CPU)."""
    from verl.utils.config import omega_conf_to_dataclass

    node = OmegaConf.create(OmegaConf.to_container(cfg.actor_rollout_ref.model, resolve=True))
    node.override_config = {**node.get("override_config", {}), "attn_implementation": "sdpa"}
    try:
        return omega_conf_to_dataclass(node)
    except (OSError, ValueError) as exc:
        raise TaskError(f"actor_rollout_ref.model.path={node.path}: cannot load it ({exc})") from exc


def _check_vocabulary(rows: Sequence[StepRow], vocab_size: int) -> None:
    for row in rows:
        top = max(max(row.prompt_ids), max(row.response_ids))
        if top >= vocab_size:
            raise TaskError(
                f"row {row.key}: token id {top} is outside the model's vocabulary ({vocab_size}); the rows were "
                "tokenised for another model (pass the dry run's --model)"
            )


def _build_engine(cfg: DictConfig, model_config: Any, mode: str, lr: float) -> tuple[Any, Any]:
    """verl's FSDP2 engine for the recipe's actor, as its actor worker builds it (engine_workers.py),
    with the CPU settings; the loss is verl's `ppo_loss` with the recipe's actor config."""
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead
    from verl.workers.utils.losses import ppo_loss

    node = OmegaConf.create(OmegaConf.to_container(cfg.actor_rollout_ref.actor, resolve=True))
    node.strategy = node.fsdp_config.strategy = "fsdp2"
    node.fsdp_config.param_offload = node.fsdp_config.optimizer_offload = node.fsdp_config.offload_policy = False
    node.fsdp_config.mixed_precision = {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    node.use_torch_compile = node.fsdp_config.use_torch_compile = False
    node.loss_agg_mode = mode
    node.optim.lr = lr
    node.optim.total_training_steps = 1
    actor = omega_conf_to_dataclass(node)
    actor.model_config = model_config
    engine_config = actor.engine  # what the worker sets on it (engine_workers.py), for one GPU's share
    engine_config.use_dynamic_bsz = actor.use_dynamic_bsz
    engine_config.max_token_len_per_gpu = engine_config.infer_max_token_len_per_gpu = actor.ppo_max_token_len_per_gpu
    engine_config.micro_batch_size_per_gpu = actor.ppo_micro_batch_size_per_gpu
    engine_config.infer_micro_batch_size_per_gpu = actor.ppo_micro_batch_size_per_gpu
    engine_config.use_remove_padding = model_config.use_remove_padding
    engine = FSDPEngineWithLMHead(
        model_config=model_config,
        engine_config=engine_config,
        optimizer_config=actor.optim,
        checkpoint_config=actor.checkpoint,
    )
    engine.initialize()
    return engine, partial(ppo_loss, config=actor)


def _nested(tensors: Sequence[Any]) -> Any:
    import torch

    return torch.nested.as_nested_tensor(list(tensors), layout=torch.jagged)


def _assign(batch: Any, **values: Any) -> None:
    from verl.utils import tensordict_utils as tu

    tu.assign_non_tensor(batch, **values)


def _batch(rows: Sequence[StepRow], engine: Any) -> Any:
    """The rows in the jagged layout V1 keeps them in (`AgentLoopWorkerTQ._agent_loop_postprocess`:
    prompts, responses, masks, input ids and positions per row), with the per-batch settings verl's
    training worker adds before calling the engine (`TrainingWorker.train_batch`; its `infer_batch`
    adds the infer_* ones, equal here)."""
    import torch
    from verl.utils import tensordict_utils as tu

    prompts = [torch.tensor(r.prompt_ids, dtype=torch.int64) for r in rows]
    responses = [torch.tensor(r.response_ids, dtype=torch.int64) for r in rows]
    input_ids = [torch.cat(pair) for pair in zip(prompts, responses, strict=True)]
    masks = [torch.ones_like(r) for r in responses]
    columns = {
        "prompts": prompts,
        "responses": responses,
        "response_mask": masks,
        "loss_mask": masks,
        "input_ids": input_ids,
        "position_ids": [torch.arange(len(ids)) for ids in input_ids],
    }
    settings = engine.engine_config
    return tu.get_tensordict(
        {name: _nested(values) for name, values in columns.items()},
        {
            "temperature": 1.0,
            "use_remove_padding": settings.use_remove_padding,
            "use_dynamic_bsz": settings.use_dynamic_bsz,
            "max_token_len_per_gpu": settings.max_token_len_per_gpu,
            "micro_batch_size_per_gpu": settings.micro_batch_size_per_gpu,
            "use_fused_kernels": settings.use_fused_kernels,
        },
    )


def _response_logprobs(engine: Any, batch: Any) -> list[Any]:
    """Per row, the log-probability of each response token, from the engine (no gradient)."""
    from verl.workers.utils.padding import response_from_nested

    output = engine.infer_batch(batch)
    return list(response_from_nested(output["model_output"]["log_probs"], batch["response_mask"]).unbind())


def _transformers_logprobs(model_config: Any, rows: Sequence[StepRow]) -> list[Any]:
    """Per row, the response tokens' log-probabilities from a plain transformers forward of that row
    alone: the reference for the engine's packed, unpadded forward."""
    import torch
    from transformers import AutoModelForCausalLM

    path = model_config.local_path
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa", dtype=torch.float32)
    model.eval()
    out = []
    with torch.no_grad():
        for row in rows:
            logits = model(torch.tensor([row.prompt_ids + row.response_ids])).logits[0, len(row.prompt_ids) - 1 : -1]
            out.append(torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(row.response_ids)[:, None])[:, 0])
    return out


def run_from_args(args: Any) -> int:
    """`memalpha train step-check`: the recipe's actor config, one update per loss_agg_mode, a report."""
    from tabulate import tabulate

    from .compose import compose_recipe

    rows = load_rows(args.rows)
    overrides = [f"actor_rollout_ref.model.path={args.model}", *args.overrides] if args.model else list(args.overrides)
    cfg = compose_recipe(overrides, files=())
    modes = [str(cfg.actor_rollout_ref.actor.loss_agg_mode), *args.also]
    lr = args.lr if args.lr is not None else float(cfg.actor_rollout_ref.actor.optim.lr)
    print(f"step check: {len(rows)} rows from {args.rows}, model {cfg.actor_rollout_ref.model.path}, lr {lr:g}")
    reports = run_step_check(rows, cfg, modes, lr=lr)
    for report in reports:
        _print_report(report, tabulate)
    if args.json:
        replace_file(args.json, json.dumps([r.to_json() for r in reports], indent=2))
    failed = [f"{r.loss_agg_mode}: {f}" for r in reports for f in r.failures()]
    for line in failed:
        print(f"FAILED {line}")
    return 1 if failed else 0


def _print_report(report: StepReport, tabulate: Any) -> None:
    table = [
        [
            r.key,
            r.tokens,
            f"{r.advantage:+.4f}",
            f"{r.old_logprob:.6f}",
            f"{r.new_logprob - r.old_logprob:+.3e}",
            {True: "yes", False: "NO", None: "-"}[r.moved_with_advantage],
        ]
        for r in report.rows
    ]
    headers = ["row", "tokens", "advantage", "mean log-prob", "change", "with advantage"]
    moved, judged = report.rows_with_advantage()
    print(f"\nloss_agg_mode={report.loss_agg_mode}")
    print(tabulate(table, headers=headers, disable_numparse=True))
    print(
        f"advantage: {report.advantage_per_row:+.4f} per row, {report.advantage_per_token:+.4f} per token\n"
        f"first-step loss: engine {report.engine_loss:+.6f}, by hand {report.expected_loss:+.6f}\n"
        f"log-probs: engine vs transformers, max gap {report.logprob_gap:.1e}\n"
        f"rows moving the way their advantage says: {moved}/{judged}; grad norm {report.grad_norm:.4f}"
    )
