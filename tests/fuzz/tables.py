"""The rules' state slots, the hyperparameter edits and the shapes the fuzzer draws from."""

# Small parameters, one of them (300 float32 or float64 elements) over the 1 KiB under which
# NumPy keeps freed data in a cache of its own: freed, its memory goes back to malloc, where
# AddressSanitizer sees a use after free.
SMALL_SHAPES = ((7,), (3, 5), (17,), (1,), (300,))

# The state slots of each rule (torch's keys), whichever hyperparameters make them active.
SLOTS = {
    "Adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "Adamax": ("exp_avg", "exp_inf"),
    "Adadelta": ("square_avg", "acc_delta"),
    "SGD": ("momentum_buffer",),
    "Adagrad": ("sum",),
    "RMSprop": ("square_avg", "momentum_buffer", "grad_avg"),
}

# Edits of a group's hyperparameters between steps, valid and invalid; "toggle" flips a flag.
HYPER_EDITS = {
    "Adam": [("lr", 0.05), ("lr", -1.0), ("betas", (0.5, 0.9)), ("betas", (1.5, 0.999)),
             ("betas", (0.9, -0.1)), ("amsgrad", "toggle"), ("eps", 0.0), ("eps", -1.0),
             ("weight_decay", -1.0), ("maximize", "toggle")],
    "Adamax": [("lr", 0.05), ("lr", -1.0), ("betas", (0.5, 0.9)), ("betas", (1.5, 0.999)),
               ("eps", -1.0), ("weight_decay", 0.2)],
    "Adadelta": [("lr", 0.1), ("lr", -1.0), ("rho", 0.5), ("rho", 1.5), ("eps", -1.0), ("weight_decay", -1.0)],
    "SGD": [("lr", 0.05), ("lr", -1.0), ("momentum", 0.9), ("momentum", 0.0), ("momentum", -0.5),
            ("nesterov", "toggle"), ("dampening", 0.5), ("maximize", "toggle")],
    "Adagrad": [("lr", 0.05), ("lr", -1.0), ("lr_decay", -1.0), ("eps", -1.0), ("weight_decay", 0.2)],
    "RMSprop": [("lr", 0.05), ("lr", -1.0), ("alpha", 1.5), ("momentum", 0.5), ("momentum", 0.0),
                ("centered", "toggle"), ("eps", -1.0)],
}
HYPER_EDITS["AdamW"] = HYPER_EDITS["Adam"]
