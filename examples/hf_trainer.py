"""Train a Hugging Face model with ``transformers.Trainer`` stepping ``adamkit.torch.AdamW``.

    pip install "adamkit[torch,integrations]"
    python examples/hf_trainer.py

It runs on the CPU in seconds: a one-layer GPT-2 built from a config (nothing is downloaded)
learns synthetic sequences that count up by one. It shows the two ways to hand ``Trainer`` an
optimizer, then stops a run halfway and resumes it from the checkpoint, which reloads adamkit's
state dict and gives the same weights as the run that never stopped.
"""

import tempfile

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments, set_seed

import adamkit.torch

VOCABULARY = 16
STEPS = 12


def counting_sequences(count, length=12, seed=0):
    """Sequences that count up by one (mod VOCABULARY) from a random start: the next token is
    always predictable, so the loss of a model that learns falls far below log(VOCABULARY)."""
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(VOCABULARY, (count, 1), generator=generator)
    tokens = (starts + torch.arange(length)) % VOCABULARY
    # Trainer's default collator stacks these dicts into batches; the model shifts the labels.
    return [{"input_ids": row, "labels": row} for row in tokens]


def tiny_gpt2(seed=0):
    set_seed(seed)
    config = GPT2Config(
        vocab_size=VOCABULARY, n_positions=16, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    return GPT2LMHeadModel(config)


def training_arguments(output_dir, **overrides):
    settings = dict(
        output_dir=output_dir,
        use_cpu=True,
        max_steps=STEPS,
        per_device_train_batch_size=8,
        logging_steps=STEPS,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    return TrainingArguments(**(settings | overrides))


def stepped_optimizer(trainer):
    """The optimizer Trainer stepped (accelerate wraps it in an ``AcceleratedOptimizer``)."""
    return getattr(trainer.optimizer, "optimizer", trainer.optimizer)


def train_with_an_optimizer_instance(output_dir):
    """``optimizers=(optimizer, scheduler)``: you build both; Trainer steps them as they are."""
    model = tiny_gpt2()
    optimizer = adamkit.torch.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.98), weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.1, total_iters=STEPS)
    trainer = Trainer(
        model=model,
        args=training_arguments(output_dir),
        train_dataset=counting_sequences(96),
        eval_dataset=counting_sequences(32, seed=1),
        optimizers=(optimizer, scheduler),
    )
    return summarize(trainer)


def optimizer_class_and_arguments():
    """``optimizer_cls_and_kwargs=(cls, kwargs)``: Trainer builds the optimizer itself, over its
    two parameter groups (weight decay for matrices, none for biases and LayerNorm weights), and
    its own scheduler. Put ``lr`` in the kwargs: Trainer does not pass ``learning_rate`` to a
    class given this way, so without it the class's default (1e-3) would be used."""
    return adamkit.torch.AdamW, {"lr": 3e-3, "betas": (0.9, 0.98), "eps": 1e-7}


def trainer_building_its_optimizer(output_dir, **overrides):
    return Trainer(
        model=tiny_gpt2(),
        args=training_arguments(output_dir, weight_decay=0.05, **overrides),
        train_dataset=counting_sequences(96),
        eval_dataset=counting_sequences(32, seed=1),
        optimizer_cls_and_kwargs=optimizer_class_and_arguments(),
    )


def summarize(trainer):
    """Train, and say what happened: the held-out loss before and after, and the optimizer."""
    loss_before = trainer.evaluate()["eval_loss"]
    trainer.train()
    optimizer = stepped_optimizer(trainer)
    return {
        "loss_before": loss_before,
        "loss_after": trainer.evaluate()["eval_loss"],
        "optimizer": class_name(optimizer),
        "param_groups": len(optimizer.param_groups),
        "steps_taken": [int(state["step"]) for state in optimizer.state.values()],
        "global_step": trainer.state.global_step,
    }


def class_name(optimizer):
    return f"{type(optimizer).__module__}.{type(optimizer).__qualname__}"


def final_weights(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


def resume_halfway(output_dir):
    """Save a checkpoint at step STEPS / 2, resume from it in a fresh Trainer, and compare the
    weights with those of a run that never stopped: the largest difference is 0.0 when
    ``optimizer.pt`` (adamkit's state dict) and the scheduler reload exactly."""
    halfway = STEPS // 2
    saving = {"save_strategy": "steps", "save_steps": halfway}
    uninterrupted = trainer_building_its_optimizer(f"{output_dir}/whole", **saving)
    uninterrupted.train()
    resumed = trainer_building_its_optimizer(f"{output_dir}/resumed", **saving)
    resumed.train(resume_from_checkpoint=f"{output_dir}/whole/checkpoint-{halfway}")
    return {
        "largest_weight_difference": (final_weights(uninterrupted) - final_weights(resumed)).abs().max().item(),
        "optimizer": class_name(stepped_optimizer(resumed)),
    }


def main(output_dir):
    return {
        "optimizers": train_with_an_optimizer_instance(f"{output_dir}/instance"),
        "optimizer_cls_and_kwargs": summarize(trainer_building_its_optimizer(f"{output_dir}/class")),
        "resume": resume_halfway(f"{output_dir}/resume"),
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        for way, facts in main(directory).items():
            print(f"{way}: {facts}")
