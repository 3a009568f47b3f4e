/* The GRU cell's elementwise work per step (minirnn/cells/gru.py). The reset gate
   splits each step around a product, so two kernels each way. One element per (b, j)
   of a (B,H) array, n = B·H; A_t (B,3H) and dA_t (B,3H) hold the blocks z, r, h side
   by side (row b at b·3H), G_t (3,B,H) and dG (3,B,H) gate-major [Z_t, R_t, H̃_t].

   Forward:
     P2 = H_{t-1}·[W_hz|W_hr]  (B,2H)                      the first product
     gru_step_forward_gates:  Z_t, R_t = σ(A_t[z|r] + P2) into G_t[0], G_t[1];
                              RH_t = R_t ⊙ H_{t-1}
     G_t[2] = RH_t·W_hh                                    the second product
     gru_step_forward_state:  H̃_t = tanh(G_t[2] + A_t[h]) into G_t[2];
                              H_t = (H_{t-1} - H̃_t) ⊙ Z_t + H̃_t
   P2 may be NULL when the product was already accumulated into A_t[z|r] (β = 1).

   Backward (dH holds dL/dH_{t-1} from step t+1 on entry, from step t on exit):
     gru_step_backward_state: dH_t = dHs_t + dH (+ P, the last product of step t+1,
                              when it was not accumulated into dH), kept in dHs_t;
                              dH = dH_t ⊙ Z_t;  with g = dH_t ⊙ (1 - Z_t):
                              dG[0] = (H_t - H̃_t) ⊙ g,  dG[2] = (1 - H̃_t²) ⊙ g,
                              dG[1] = R_t (kept for the second kernel)
     Q = dG[2]·W_hhᵀ                                        into R_t ⊙ H_{t-1}
     gru_step_backward_gates: dA_r = (Q ⊙ RH_t) ⊙ (1 - R_t), in the cell's order;
                              dH += Q ⊙ R_t;  dA_t = [dG[0] | dA_r | dG[2]]
     dH += dA_t[z|r]·[W_hz|W_hr]ᵀ                           the last product (β = 1)

   The second backward kernel reads no cached gate (R_t comes through dG[1]), so dA_t
   may be G_t's own memory, as in the NumPy sequence. The forward kernels write G_t
   gate-major from A_t side by side: a launch has no order between its threads, so
   G_t must not overlap A_t (the NumPy sequence keeps G_t one block ahead of A_t). */

KERNEL gru_step_forward_gates(const real *A_t, const real *P2, const real *H_prev, real *G_t, real *RH_t,
                              long long n, long long H)
{
    FOR_EACH_ELEMENT(i, n) {
        long long b = i / H, j = i - b * H;
        const real *a = A_t + b * 3 * H;
        real az = P2 ? P2[b * 2 * H + j] + a[j] : a[j];               /* the update gate's pre-activation */
        real ar = P2 ? P2[b * 2 * H + H + j] + a[H + j] : a[H + j];   /* the reset gate's */
        real z = SIGMOID(az), r = SIGMOID(ar);
        G_t[i] = z;                                                   /* Z_t */
        G_t[n + i] = r;                                               /* R_t */
        RH_t[i] = r * H_prev[i];                                      /* R_t ⊙ H_{t-1} */
    }
}

KERNEL gru_step_forward_state(const real *A_t, const real *H_prev, real *G_t, real *H_t, long long n, long long H)
{
    FOR_EACH_ELEMENT(i, n) {
        long long b = i / H, j = i - b * H;
        real hc = TANH(G_t[2 * n + i] + A_t[b * 3 * H + 2 * H + j]);  /* H̃_t */
        G_t[2 * n + i] = hc;
        H_t[i] = (H_prev[i] - hc) * G_t[i] + hc;                      /* H_t = H̃ + Z ⊙ (H_{t-1} - H̃) */
    }
}

KERNEL gru_step_backward_state(real *dHs_t, real *dH, const real *P, const real *G_t, const real *H_t, real *dG,
                               long long n)
{
    FOR_EACH_ELEMENT(i, n) {
        real dn = P ? dH[i] + P[i] : dH[i];       /* dL/dH_t from step t+1 */
        real d = dHs_t[i] + dn;                   /* total dL/dH_t */
        dHs_t[i] = d;
        real z = G_t[i], r = G_t[n + i], hc = G_t[2 * n + i];
        real dz = d * z;                          /* into H_{t-1}, directly through the update gate */
        real g = d - dz;                          /* into H̃_t: dH ⊙ (1 - Z) */
        dG[2 * n + i] = ((real)1 - hc * hc) * g;  /* into H̃_t's pre-activation */
        dG[i] = (H_t[i] - hc) * g;                /* into Z_t's pre-activation */
        dG[n + i] = r;                            /* R_t, for the second kernel */
        dH[i] = dz;
    }
}

KERNEL gru_step_backward_gates(const real *Q, const real *RH_t, const real *dG, real *dH, real *dA_t,
                               long long n, long long H)
{
    FOR_EACH_ELEMENT(i, n) {
        long long b = i / H, j = i - b * H;
        real q = Q[i], r = dG[n + i];
        real dr = q * RH_t[i];                    /* into R_t, times R_t: d(R⊙H) ⊙ H_{t-1} ⊙ R_t */
        dH[i] += q * r;                           /* into H_{t-1}, through the reset gate */
        dr -= dr * r;                             /* into R_t's pre-activation: ⊙ (1 - R_t) */
        real *da = dA_t + b * 3 * H;
        da[j] = dG[i];                            /* the three, side by side */
        da[H + j] = dr;
        da[2 * H + j] = dG[2 * n + i];
    }
}
