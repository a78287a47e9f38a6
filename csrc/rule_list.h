/* The rules the kernels run, listed once. Each entry X(UPPER, lower, arg) gives:
 *   AK_RULE_<UPPER>      its value of the ak_rule enum (kernels_api.h);
 *   "lower"              the name adamkit.kernels.native sends for it: the name of its function
 *                        in adamkit.rules (arguments.c);
 *   <lower>_segment      its segment function, defined in rules.h by DEFINE_SEGMENT(<lower>) and
 *                        instantiated per ISA and layout as ak_<isa>_<layout>_<lower>_segment
 *                        (instantiate.h's dispatch table).
 * `arg` is passed through to X unchanged (the layout, in instantiate.h).
 * Adam and AdamW share AK_RULE_ADAM: AdamW is Adam with decoupled weight decay. */
#ifndef ADAMKIT_RULE_LIST_H
#define ADAMKIT_RULE_LIST_H

#define AK_RULES(X, arg)                                                                           \
    X(ADAM, adam, arg)                                                                             \
    X(ADAMAX, adamax, arg)                                                                         \
    X(ADADELTA, adadelta, arg)                                                                     \
    X(SGD, sgd, arg)                                                                               \
    X(ADAGRAD, adagrad, arg)                                                                       \
    X(RMSPROP, rmsprop, arg)

#endif
