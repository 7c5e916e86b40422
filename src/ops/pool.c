/*
 * pool.c - max pooling and global average pooling, forward.
 *
 * Planes: x: (P, H, W) with P = C*N in the channel-major layout.
 */
#include <float.h>

#include "core/threads.h"
#include "ops/ops.h"

int maxpool2d_out_size(int in, int k, int stride, int pad) {
    int span = in + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

/* ---- max pooling ------------------------------------------------------------ */

static void maxpool_plane(const float *x, int H, int W, int k, int stride, int pad,
                          int HO, int WO, float *y) {
    for (int oy = 0; oy < HO; oy++) {
        int y0 = oy * stride - pad;
        int ky0 = y0 < 0 ? -y0 : 0;
        int ky1 = y0 + k > H ? H - y0 : k;
        for (int ox = 0; ox < WO; ox++) {
            int x0 = ox * stride - pad;
            int kx0 = x0 < 0 ? -x0 : 0;
            int kx1 = x0 + k > W ? W - x0 : k;
            float m = -FLT_MAX;
            for (int ky = ky0; ky < ky1; ky++) {
                const float *row = x + (size_t)(y0 + ky) * W + x0;
                for (int kx = kx0; kx < kx1; kx++)
                    m = row[kx] > m ? row[kx] : m;
            }
            y[(size_t)oy * WO + ox] = m;
        }
    }
}

void maxpool2d_forward_ref(const float *x, int P, int H, int W, int k, int stride,
                           int pad, float *y) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
    for (int p = 0; p < P; p++)
        for (int oy = 0; oy < HO; oy++)
            for (int ox = 0; ox < WO; ox++) {
                float m = -FLT_MAX;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            continue;
                        float v = x[((size_t)p * H + iy) * W + ix];
                        if (v > m)
                            m = v;
                    }
                y[((size_t)p * HO + oy) * WO + ox] = m;
            }
}

void maxpool2d_forward(const float *x, int P, int H, int W, int k, int stride,
                       int pad, float *y) {
    int HO = maxpool2d_out_size(H, k, stride, pad), WO = maxpool2d_out_size(W, k, stride, pad);
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (int p = 0; p < P; p++)
        maxpool_plane(x + (size_t)p * H * W, H, W, k, stride, pad, HO, WO,
                      y + (size_t)p * HO * WO);
}

/* ---- global average pooling ---------------------------------------------------- */

void avgpool_global_forward_ref(const float *x, size_t P, size_t HW, float *y) {
    for (size_t p = 0; p < P; p++) {
        float sum = 0.0f;
        for (size_t i = 0; i < HW; i++)
            sum += x[p * HW + i];
        y[p] = sum / (float)HW;
    }
}

void avgpool_global_forward(const float *x, size_t P, size_t HW, float *y) {
#pragma omp parallel for num_threads(rn_threads()) schedule(static)
    for (size_t p = 0; p < P; p++) {
        const float *row = x + p * HW;
        float acc[8] = {0};
        size_t i = 0;
        for (; i + 8 <= HW; i += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += row[i + j];
        for (; i < HW; i++)
            acc[0] += row[i];
        float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        y[p] = sum / (float)HW;
    }
}
