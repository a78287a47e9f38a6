/* The rules the kernels run, listed once. Each entry X(UPPER, lower, counts, arg) gives:
 *   AK_RULE_<UPPER>      its value of the ak_rule enum (kernels_api.h);
 *   "lower"              the name adamkit.kernels.native sends for it: the name of its function
 *                        in adamkit.rules (arguments.c);
 *   <lower>_segment      its segment function, defined in rules.h by DEFINE_SEGMENT(<lower>) and
 *                        instantiated per ISA and layout as ak_<isa>_<layout>_<lower>_segment
 *                        (instantiate.h's dispatch table);
 *   counts               1 if its per-step scalars read the step count (bias corrections,
 *                        Adagrad's decayed lr), as its spec's uses_step says (scalars.c).
 * `arg` is passed through to X unchanged (the layout, in instantiate.h).
 * Adam and AdamW share AK_RULE_ADAM: AdamW is Adam with decoupled weight decay. */
#ifndef ADAMKIT_RULE_LIST_H
#define ADAMKIT_RULE_LIST_H

#define AK_RULES(X, arg)                                                                           \
    X(ADAM, adam, 1, arg)                                                                          \
    X(ADAMAX, adamax, 1, arg)                                                                      \
    X(ADADELTA, adadelta, 0, arg)                                                                  \
    X(SGD, sgd, 0, arg)                                                                            \
    X(ADAGRAD, adagrad, 1, arg)                                                                    \
    X(RMSPROP, rmsprop, 0, arg)                                                                    \
    X(NADAM, nadam, 1, arg)                                                                        \
    X(RADAM, radam, 1, arg)                                                                        \
    X(ADABELIEF, adabelief, 1, arg)                                                                \
    X(ADOPT, adopt, 1, arg)                                                                        \
    X(LION, lion, 0, arg)                                                                          \
    X(ADEMAMIX, ademamix, 1, arg)                                                                  \
    X(LAMB, lamb, 1, arg)                                                                          \
    X(SCHEDULE_FREE_ADAMW, schedule_free_adamw, 1, arg)                                            \
    /* Each entry ends with a backslash, so that a new rule is one added line. */

#endif
