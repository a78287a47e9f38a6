/* Adafactor's passes (adafactor.h) for one ISA and layout (float32 or float64): included by
 * instantiate.h, which defines FN, VEC, LANES, OPS and P_T. Each vector loop's tail runs the
 * same code on zero-padded buffers; the small factors are plain C, the same on every ISA. Each
 * line mirrors the line of adamkit.rules.adafactor it quotes. */

/* Add the squares of the LANES elements v, in float64, to sums[0], ..., sums[LANES - 1] in
 * memory (the ISA's add_squares adds to float64 vectors in registers). */
static inline void FN(adafactor_add_squares)(double *sums, VEC v)
{
    f64v lanes[LANES / F64_LANES];
    for (int i = 0; i < LANES / F64_LANES; i++)
        lanes[i] = f64v_load(sums + i * F64_LANES);
    OPS(add_squares)(lanes, v);
    for (int i = 0; i < LANES / F64_LANES; i++)
        f64v_store(sums + i * F64_LANES, lanes[i]);
}

/* Add the squares of AK_NORM_LANES elements, in float64, to their lanes and to their columns. */
static inline void FN(adafactor_square_lanes)(const P_T *x, double *lanes, double *col_sums)
{
    for (int k = 0; k < AK_NORM_LANES; k += LANES) {
        VEC v = OPS(load)(x + k);
        FN(adafactor_add_squares)(lanes + k, v);
        FN(adafactor_add_squares)(col_sums + k, v);
    }
}

/* Pass 1 over `rows` rows of `cols` columns: row_sums[r] = the row's sum of squares
 * (squared_norm's order), col_sums (cols rounded up to AK_NORM_LANES, zeros at first) += each
 * row's squares, the rows one by one. */
static void FN(adafactor_factor_rows)(const void *grad, int64_t rows, int64_t cols, double *row_sums, double *col_sums)
{
    for (int64_t r = 0; r < rows; r++) {
        const P_T *row = (const P_T *)grad + r * cols;
        double total = 0.0;
        for (int64_t start = 0; start < cols; start += AK_NORM_BLOCK) {
            int64_t end = cols - start < AK_NORM_BLOCK ? cols : start + AK_NORM_BLOCK;
            _Alignas(64) double lanes[AK_NORM_LANES] = {0};
            int64_t j = start;
            for (; j + AK_NORM_LANES <= end; j += AK_NORM_LANES)
                FN(adafactor_square_lanes)(row + j, lanes, col_sums + j);
            if (j < end) {
                _Alignas(64) P_T tail[AK_NORM_LANES] = {0};
                memcpy(tail, row + j, (size_t)(end - j) * sizeof *tail);
                FN(adafactor_square_lanes)(tail, lanes, col_sums + j);
            }
            total += ak_adafactor_tree_sum(lanes);
        }
        row_sums[r] = total;
    }
}

/* _lerp(start, end, weight) in the dtype, weight a double. */
static inline P_T FN(adafactor_lerp)(P_T start, P_T end, double weight)
{
    if (weight < 0.5)
        return start + (P_T)weight * (end - start);
    return end - (end - start) * (P_T)(1 - weight);
}

/* _mean_from_sum(sum, count): the root rounded to the dtype, squared, over count. */
static inline P_T FN(adafactor_mean_from_sum)(double sum, int64_t count)
{
    P_T norm = (P_T)sqrt(sum);
    return (norm * norm) / (P_T)count;
}

/* After pass 1: row_var and col_var lerped towards the means of the squares, and each matrix's
 * max(row_var_mean(row_var), eps1) into k->row_var_means. */
static void FN(adafactor_factors)(const ak_adafactor_tensor *t, const ak_adafactor_hyper *h, ak_adafactor_scalars *k,
                                  const double *row_sums, const double *col_sums)
{
    P_T *row_var = t->row_var, *col_var = t->col_var;
    int64_t matrices = t->numel / (t->rows * t->cols);
    for (int64_t i = 0; i < matrices * t->rows; i++)
        row_var[i] = FN(adafactor_lerp)(row_var[i], FN(adafactor_mean_from_sum)(row_sums[i], t->cols), k->one_minus_beta2);
    for (int64_t i = 0; i < matrices * t->cols; i++)
        col_var[i] = FN(adafactor_lerp)(col_var[i], FN(adafactor_mean_from_sum)(col_sums[i], t->rows), k->one_minus_beta2);
    for (int64_t m = 0; m < matrices; m++) {
        double sum = 0.0;
        for (int64_t r = 0; r < t->rows; r++)
            sum += (double)row_var[m * t->rows + r];
        P_T mean = (P_T)(sum / (double)t->rows), eps1 = (P_T)h->eps1;
        k->row_var_means[m] = mean != mean ? mean : mean > eps1 ? mean : eps1; /* np.maximum */
    }
}

/* update = (1 / sqrt(maximum(var_estimate, eps1 * eps1))) * grad, grad directed. */
static inline VEC FN(adafactor_update_of)(VEC var_estimate, VEC grad, const ak_adafactor_hyper *h)
{
    VEC floor = OPS(set1)((P_T)(h->eps1 * h->eps1));
    VEC inverse_root = OPS(div)(OPS(set1)((P_T)1), OPS(sqrt)(OPS(max)(var_estimate, floor)));
    return OPS(mul)(inverse_root, h->maximize ? OPS(neg)(grad) : grad);
}

/* LANES updates of a factored tensor: var_estimate = (row_var * col_var) / mean. */
static inline void FN(adafactor_factored_lanes)(const P_T *grad, const P_T *col_var, P_T row_var, P_T mean,
                                                const ak_adafactor_hyper *h, P_T *u)
{
    VEC var_estimate = OPS(div)(OPS(mul)(OPS(set1)(row_var), OPS(load)(col_var)), OPS(set1)(mean));
    OPS(store)(u, FN(adafactor_update_of)(var_estimate, OPS(load)(grad), h));
}

/* LANES updates of a vector: variance = _lerp(variance, grad * grad, one_minus_beta2), stored
 * if `store`. */
static inline void FN(adafactor_vector_lanes)(const P_T *grad, P_T *variance, double weight, int store,
                                              const ak_adafactor_hyper *h, P_T *u)
{
    VEC g = OPS(load)(grad), v = OPS(load)(variance);
    if (store) {
        VEC squares = OPS(mul)(g, g);
        if (weight < 0.5)
            v = OPS(add)(v, OPS(mul)(OPS(set1)((P_T)weight), OPS(sub)(squares, v)));
        else
            v = OPS(sub)(squares, OPS(mul)(OPS(sub)(squares, v), OPS(set1)((P_T)(1 - weight))));
        OPS(store)(variance, v);
    }
    OPS(store)(u, FN(adafactor_update_of)(v, g, h));
}

/* u[0, n) = the updates of n consecutive elements from `first` within one row of a factored
 * tensor (row_var, mean), or of a vector. */
static void FN(adafactor_span)(const ak_adafactor_tensor *t, const ak_adafactor_hyper *h, const ak_adafactor_scalars *k,
                               int64_t first, int64_t n, int store, P_T *u)
{
    const P_T *grad = (const P_T *)t->grad + first;
    int64_t j = 0;
    if (t->rows) {
        int64_t row = first / t->cols, matrix = row / t->rows;
        const P_T *col_var = (const P_T *)t->col_var + matrix * t->cols + first % t->cols;
        P_T row_var = ((const P_T *)t->row_var)[row], mean = (P_T)k->row_var_means[matrix];
        for (; j + LANES <= n; j += LANES)
            FN(adafactor_factored_lanes)(grad + j, col_var + j, row_var, mean, h, u + j);
        if (j < n) {
            _Alignas(64) P_T g[LANES] = {0}, c[LANES] = {0}, out[LANES];
            memcpy(g, grad + j, (size_t)(n - j) * sizeof *g);
            memcpy(c, col_var + j, (size_t)(n - j) * sizeof *c);
            FN(adafactor_factored_lanes)(g, c, row_var, mean, h, out);
            memcpy(u + j, out, (size_t)(n - j) * sizeof *out);
        }
        return;
    }
    P_T *variance = (P_T *)t->variance + first;
    for (; j + LANES <= n; j += LANES)
        FN(adafactor_vector_lanes)(grad + j, variance + j, k->one_minus_beta2, store, h, u + j);
    if (j < n) {
        _Alignas(64) P_T g[LANES] = {0}, v[LANES] = {0}, out[LANES];
        memcpy(g, grad + j, (size_t)(n - j) * sizeof *g);
        memcpy(v, variance + j, (size_t)(n - j) * sizeof *v);
        FN(adafactor_vector_lanes)(g, v, k->one_minus_beta2, store, h, out);
        memcpy(u + j, out, (size_t)(n - j) * sizeof *out);
        if (store)
            memcpy(variance + j, v, (size_t)(n - j) * sizeof *v);
    }
}

/* The updates of elements [first, first + n) of a tensor, row piece by row piece, into `u`. */
static void FN(adafactor_updates)(const ak_adafactor_tensor *t, const ak_adafactor_hyper *h,
                                  const ak_adafactor_scalars *k, int64_t first, int64_t n, int store, void *u)
{
    P_T *out = u;
    for (int64_t done = 0; done < n;) {
        int64_t position = first + done, piece = n - done;
        if (t->rows && t->cols - position % t->cols < piece)
            piece = t->cols - position % t->cols;
        FN(adafactor_span)(t, h, k, position, piece, store, out + done);
        done += piece;
    }
}

/* Add the squares of n parameters and of their updates to two sets of AK_NORM_LANES lanes
 * (element i to lane i % AK_NORM_LANES, n <= AK_NORM_BLOCK). */
static void FN(adafactor_squares)(const void *param, const void *u, int64_t n, double *lanes)
{
    const P_T *p = param, *update = u;
    int64_t j = 0;
    for (; j + AK_NORM_LANES <= n; j += AK_NORM_LANES)
        for (int k = 0; k < AK_NORM_LANES; k += LANES) {
            FN(adafactor_add_squares)(lanes + k, OPS(load)(p + j + k));
            FN(adafactor_add_squares)(lanes + AK_NORM_LANES + k, OPS(load)(update + j + k));
        }
    if (j < n) {
        _Alignas(64) P_T tail_p[AK_NORM_LANES] = {0}, tail_u[AK_NORM_LANES] = {0};
        memcpy(tail_p, p + j, (size_t)(n - j) * sizeof *tail_p);
        memcpy(tail_u, update + j, (size_t)(n - j) * sizeof *tail_u);
        for (int k = 0; k < AK_NORM_LANES; k += LANES) {
            FN(adafactor_add_squares)(lanes + k, OPS(load)(tail_p + k));
            FN(adafactor_add_squares)(lanes + AK_NORM_LANES + k, OPS(load)(tail_u + k));
        }
    }
}

/* param = param * (1 - lr * weight_decay) (if weight_decay != 0), then
 * param = param + (-alpha / denom) * update, for LANES elements. */
static inline void FN(adafactor_apply_lanes)(P_T *param, const P_T *u, const ak_adafactor_hyper *h, P_T scale)
{
    VEC p = OPS(load)(param);
    if (h->weight_decay != 0)
        p = OPS(mul)(p, OPS(set1)((P_T)(1 - h->lr * h->weight_decay)));
    OPS(store)(param, OPS(add)(p, OPS(mul)(OPS(set1)(scale), OPS(load)(u))));
}

static void FN(adafactor_apply)(void *param, const void *u, int64_t n, const ak_adafactor_hyper *h, double scale)
{
    P_T *p = param;
    const P_T *update = u;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        FN(adafactor_apply_lanes)(p + j, update + j, h, (P_T)scale);
    if (j < n) {
        _Alignas(64) P_T tail_p[LANES] = {0}, tail_u[LANES] = {0};
        memcpy(tail_p, p + j, (size_t)(n - j) * sizeof *tail_p);
        memcpy(tail_u, update + j, (size_t)(n - j) * sizeof *tail_u);
        FN(adafactor_apply_lanes)(tail_p, tail_u, h, (P_T)scale);
        memcpy(p + j, tail_p, (size_t)(n - j) * sizeof *tail_p);
    }
}
