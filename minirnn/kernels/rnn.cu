/* The plain RNN cell's elementwise work per step (minirnn/cells/rnn.py), one kernel
   each way. One element per (b, j) of a (B,H) array, n = B·H.

   Forward, after the product P = H_{t-1}·W_hh:
       H_t = φ(Z_t + P)                        into Z_t's own memory
   P may be NULL when the product was already accumulated into Z_t (β = 1).
   relu = 0 for φ = tanh, 1 for φ = relu.

   Backward, before the product dH_{t-1} = dZ_t·W_hhᵀ (which then overwrites dH):
       dH_t = dHs_t + dH                       the step's own output + step t+1
       dZ_t = dH_t ⊙ φ'(Z_t)                   into dHs_t's memory
   φ' from the cached output H_t: 1 - H_t² for tanh, 1 if H_t > 0 else 0 for relu. */

KERNEL rnn_step_forward(real *Z_t, const real *P, long long n, int relu)
{
    FOR_EACH_ELEMENT(i, n) {
        real z = P ? Z_t[i] + P[i] : Z_t[i];      /* the pre-activation Z_t */
        Z_t[i] = relu ? (z < 0 ? (real)0 : z) : TANH(z);  /* H_t = φ(Z_t) */
    }
}

KERNEL rnn_step_backward(real *dHs_t, const real *dH, const real *H_t, long long n, int relu)
{
    FOR_EACH_ELEMENT(i, n) {
        real d = dHs_t[i] + dH[i];                /* total dL/dH_t */
        real y = H_t[i];
        real dphi = relu ? (y > 0 ? (real)1 : (real)0) : (real)1 - y * y;  /* φ'(Z_t) from H_t */
        dHs_t[i] = d * dphi;                      /* through φ: dZ_t */
    }
}
