"""Checks that a ``state_dict`` fits an optimizer before anything is loaded."""

import torch


def check_state_dict_fits(optimizer, state_dict):
    """Raise ``ValueError`` if ``state_dict`` cannot be loaded into ``optimizer`` as it is.

    torch.optim checks the number and sizes of groups but loads a state tensor of the wrong
    shape silently; here every state tensor must have its parameter's shape (or be a scalar
    such as ``step``), and every saved parameter id must exist.
    """
    if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
        raise ValueError("state_dict must be a dict with 'state' and 'param_groups'")
    saved_groups = state_dict["param_groups"]
    if len(saved_groups) != len(optimizer.param_groups):
        raise ValueError(
            f"state_dict has {len(saved_groups)} parameter groups, the optimizer has "
            f"{len(optimizer.param_groups)}"
        )
    params_by_id = {}
    for index, (saved, group) in enumerate(zip(saved_groups, optimizer.param_groups)):
        if len(saved["params"]) != len(group["params"]):
            raise ValueError(
                f"state_dict parameter group {index} has {len(saved['params'])} parameters, "
                f"the optimizer's has {len(group['params'])}"
            )
        params_by_id.update(zip(saved["params"], group["params"]))
    for param_id, param_state in state_dict["state"].items():
        if param_id not in params_by_id:
            raise ValueError(f"state_dict has state for parameter id {param_id!r}, which no group lists")
        param = params_by_id[param_id]
        for key, value in param_state.items():
            if not torch.is_tensor(value) or value.dim() == 0 and key == "step":
                continue
            if value.shape != param.shape:
                raise ValueError(
                    f"state_dict['state'][{param_id!r}][{key!r}] has shape {tuple(value.shape)}, "
                    f"but its parameter has shape {tuple(param.shape)}"
                )
