"""Train a Lightning module whose ``configure_optimizers`` returns an adamkit optimizer.

    pip install "adamkit[torch,integrations]"
    python examples/lightning_module.py

It runs on the CPU in seconds: a small MLP learns a synthetic regression target. An adamkit
optimizer is a ``torch.optim.Optimizer``, so Lightning steps it, zeroes its gradients, drives
its scheduler and saves its state like any other; nothing else changes in the module.
"""

import tempfile

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import adamkit.torch

STEPS = 40


def regression_data(count, seed):
    """Inputs and a smooth nonlinear target of them, with a little noise."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(count, 8, generator=generator)
    targets = torch.sin(inputs[:, :4].sum(dim=1, keepdim=True)) + 0.5 * inputs[:, 4:5]
    return TensorDataset(inputs, targets + 0.01 * torch.randn(count, 1, generator=generator))


class Regressor(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh())
        self.head = torch.nn.Linear(64, 1)

    def forward(self, inputs):
        return self.head(self.body(inputs))

    def training_step(self, batch, batch_index):
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(self(inputs), targets)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        # Any adamkit optimizer goes here, with parameter groups, as a torch.optim one would.
        optimizer = adamkit.torch.AdamW(
            [
                {"params": self.body.parameters()},
                {"params": self.head.parameters(), "lr": 3e-3, "weight_decay": 0.0},
            ],
            lr=1e-2,
            betas=(0.9, 0.99),
            weight_decay=0.02,
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2 * STEPS)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def held_out_loss(model, dataset):
    inputs, targets = dataset.tensors
    with torch.no_grad():
        return torch.nn.functional.mse_loss(model(inputs), targets).item()


def main(output_dir):
    """Train, and say what happened: the held-out loss before and after, and the optimizer."""
    torch.manual_seed(0)
    model = Regressor()
    held_out = regression_data(256, seed=1)
    loss_before = held_out_loss(model, held_out)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=STEPS,
        default_root_dir=output_dir,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, DataLoader(regression_data(512, seed=0), batch_size=32, shuffle=True))
    optimizer = trainer.optimizers[0]
    return {
        "loss_before": loss_before,
        "loss_after": held_out_loss(model, held_out),
        "optimizer": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        "learning_rates": [group["lr"] for group in optimizer.param_groups],
        "steps_taken": [int(state["step"]) for state in optimizer.state.values()],
        "global_step": trainer.global_step,
    }


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        print(main(directory))
