/* What every step kernel shares: the float type, its tanh, σ, and the loop over elements.

   Compiled by NVRTC for the GPU, or by the host C compiler (with MINIRNN_HOST defined)
   for the CPU test of the kernels' arithmetic. On the host there is one "thread" of
   one "block", so the grid-stride loop below is a plain loop over every element.

   Before this file, the source defines MINIRNN_REAL as float or double. */
typedef MINIRNN_REAL real;

#ifdef MINIRNN_HOST
#include <math.h>
struct minirnn_dim3 { long long x; };
static const struct minirnn_dim3 blockIdx = {0}, threadIdx = {0}, blockDim = {1}, gridDim = {1};
#define KERNEL void
#else
#define KERNEL extern "C" __global__ void
#endif

/* tanh in the float type's own precision (tanhf for float, tanh for double). */
#define MINIRNN_TANH_float tanhf
#define MINIRNN_TANH_double tanh
#define MINIRNN_CAT(a, b) a##b
#define MINIRNN_PICK(a, b) MINIRNN_CAT(a, b)
#define TANH MINIRNN_PICK(MINIRNN_TANH_, MINIRNN_REAL)

/* σ(a) = (1 + tanh(a/2)) / 2, in the NumPy cells' order: a·0.5, tanh, ·0.5, +0.5. */
#define SIGMOID(a) (TANH((a) * (real)0.5) * (real)0.5 + (real)0.5)

/* Every element i of n, each once, whatever the launch's grid and block. */
#define FOR_EACH_ELEMENT(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)
