/* The LSTM cell's elementwise work per step (minirnn/cells/lstm.py), one kernel each
   way. One element per (b, j) of a (B,H) array, n = B·H; A_t and dA_t (B,4H) hold the
   blocks i, f, o, c side by side (row b at b·4H), G_t (4,B,H) gate-major
   [I_t, F_t, O_t, C̃_t].

   Forward, after the product P4 = H_{t-1}·[W_hi|W_hf|W_ho|W_hc] (B,4H):
       I_t, F_t, O_t = σ(A_t + P4),  C̃_t = tanh(A_t + P4)     into G_t
       C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t,  tC_t = tanh(C_t),  H_t = O_t ⊙ tC_t
   P4 may be NULL when the product was already accumulated into A_t (β = 1).

   Backward, before the product dH_{t-1} = dA_t·[W_h·]ᵀ (which then overwrites dH):
       dH_t = dHs_t + dH, kept in dHs_t;  dC holds dL/dC_t from step t+1 on entry
       dA_o = (dH_t ⊙ tC_t) ⊙ O_t(1 - O_t)
       dC  += (dH_t - (dH_t ⊙ tC_t) ⊙ tC_t) ⊙ O_t
       dA_i = (dC ⊙ C̃_t) ⊙ I_t(1 - I_t),  dA_f = (dC ⊙ C_{t-1}) ⊙ F_t(1 - F_t)
       dA_c = (dC ⊙ I_t) ⊙ (1 - C̃_t²),    dC = dC ⊙ F_t        (dL/dC_{t-1} on exit)
   with σ' = σ - σ², as the NumPy cell takes it.

   A launch has no order between its threads: the forward's G_t must not overlap A_t,
   and the backward's dA_t must not overlap G_t (the NumPy cell reuses that memory through
   a copy; a GPU sequence keeps them one block apart, as the GRU does). */

KERNEL lstm_step_forward(const real *A_t, const real *P4, const real *C_prev, real *G_t, real *H_t, real *C_t,
                         real *tC_t, long long n, long long H)
{
    FOR_EACH_ELEMENT(i, n) {
        long long b = i / H, j = i - b * H;
        const real *a = A_t + b * 4 * H;
        const real *p = P4 ? P4 + b * 4 * H : 0;
        real ai = p ? p[j] + a[j] : a[j];                       /* the four pre-activations */
        real af = p ? p[H + j] + a[H + j] : a[H + j];
        real ao = p ? p[2 * H + j] + a[2 * H + j] : a[2 * H + j];
        real ac = p ? p[3 * H + j] + a[3 * H + j] : a[3 * H + j];
        real ig = SIGMOID(ai), fg = SIGMOID(af), og = SIGMOID(ao), cc = TANH(ac);
        G_t[i] = ig;                                            /* I_t, F_t, O_t, C̃_t, gate-major */
        G_t[n + i] = fg;
        G_t[2 * n + i] = og;
        G_t[3 * n + i] = cc;
        real c = fg * C_prev[i] + ig * cc;                      /* C_t = F ⊙ C_{t-1} + I ⊙ C̃ */
        real tc = TANH(c);
        C_t[i] = c;
        tC_t[i] = tc;
        H_t[i] = og * tc;                                       /* H_t = O_t ⊙ tanh(C_t) */
    }
}

KERNEL lstm_step_backward(real *dHs_t, const real *dH, real *dC, const real *G_t, const real *C_prev,
                          const real *tC_t, real *dA_t, long long n, long long H)
{
    FOR_EACH_ELEMENT(i, n) {
        long long b = i / H, j = i - b * H;
        real d = dHs_t[i] + dH[i];                              /* total dL/dH_t */
        dHs_t[i] = d;
        real ig = G_t[i], fg = G_t[n + i], og = G_t[2 * n + i], cc = G_t[3 * n + i];
        real tc = tC_t[i];
        real dog = d * tc;                                      /* into O_t */
        real dc = dC[i] + (d - dog * tc) * og;                  /* into C_t, through H_t = O ⊙ tanh(C) */
        real *da = dA_t + b * 4 * H;
        da[j] = (dc * cc) * (ig - ig * ig);                     /* into I_t's pre-activation */
        da[H + j] = (dc * C_prev[i]) * (fg - fg * fg);          /* into F_t's */
        da[2 * H + j] = dog * (og - og * og);                   /* into O_t's */
        da[3 * H + j] = (dc * ig) * ((real)1 - cc * cc);        /* into C̃_t's */
        dC[i] = dc * fg;                                        /* into C_{t-1} */
    }
}
