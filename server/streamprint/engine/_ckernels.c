/*
 * streamprint's compiled per-sample and per-frame loops, called through ctypes
 * (streamprint/engine/compiled.py; ctypes releases the GIL for each call).
 *
 * Plain C99 with no Python API: the module is built as a setuptools extension so that
 * `pip install` compiles it, but it is loaded with ctypes, not imported. The filter, YIN
 * and median loops do the same floating-point operations in the same order as the numpy /
 * scipy definitions they replace, so the results are the same bits; the meters' segment
 * sums add in sample order (equal to numpy's pairwise sums to rounding). Compiled with
 * -ffp-contract=off (no fused multiply-add) and without -ffast-math so the compiler keeps
 * the order written here.
 */
#include <math.h>
#include <float.h>
#include <stdint.h>
#include <string.h>

/* Bumped whenever a function's arguments change: compiled.py refuses a library built from
 * an older source (ctypes would pass the new arguments to the old code). */
#define SP_ABI_VERSION 7

int64_t sp_abi_version(void) { return SP_ABI_VERSION; }

/* ---- K-weighting cascade fused with the weighted energy (engine/iir.py) ----------------- */

/*
 * energy[i] = sum over c (in order) of weights[c] * y_c[i]^2, with y the samples x[i, c]
 * ([n, channels], float32 or float64, row-major) through the biquad cascade sos
 * ([sections, 6], a0 == 1) in transposed direct form II, the recursion of scipy's sosfilt.
 * zi ([sections, channels, 2]) is the state on entry and is updated in place.
 * The channels run side by side per sample: their recursions are independent, so the CPU
 * overlaps them; the sum per sample keeps the channel order.
 */
static void weighted_energy_impl(const double *sos, int64_t sections, const float *x32,
                                 const double *x64, int64_t n, int64_t channels, double *zi,
                                 const double *weights, double *energy) {
    for (int64_t i = 0; i < n; i++) {
        double total = 0.0;
        for (int64_t c = 0; c < channels; c++) {
            double cur = x32 ? (double)x32[i * channels + c] : x64[i * channels + c];
            for (int64_t s = 0; s < sections; s++) {
                const double *k = sos + 6 * s;
                double *z = zi + 2 * (s * channels + c);
                double out = k[0] * cur + z[0];
                z[0] = k[1] * cur - k[4] * out + z[1];
                z[1] = k[2] * cur - k[5] * out;
                cur = out;
            }
            total += weights[c] * (cur * cur);
        }
        energy[i] = total;
    }
}

/* One sample of one channel through two sections, the state in s[4] (section 0's pair, then
 * section 1's): the operations of weighted_energy_impl in its order. */
static inline double two_sections(const double *k, double *s, double cur) {
    double out = k[0] * cur + s[0];
    s[0] = k[1] * cur - k[4] * out + s[1];
    s[1] = k[2] * cur - k[5] * out;
    cur = out;
    out = k[6] * cur + s[2];
    s[2] = k[7] * cur - k[10] * out + s[3];
    s[3] = k[8] * cur - k[11] * out;
    return out;
}

/*
 * The K-weighting case (two sections, one or two channels) with the state in locals: the
 * general loop must reload it from zi and store it back every sample (zi may alias energy
 * as far as the compiler knows), which puts a store and a load on each recursion's critical
 * path. Same operations in the same order, so the same bits; about a third faster (each
 * recursion is then bound by its own latency: 6.4 instead of 9.6 ns per stereo frame).
 */
static void weighted_energy_two_sections(const double *sos, const float *x32, const double *x64,
                                         int64_t n, int64_t channels, double *zi,
                                         const double *weights, double *energy) {
    double k[12];
    for (int j = 0; j < 12; j++) k[j] = sos[j];
    /* zi is [section][channel][2] */
    double left[4] = {zi[0], zi[1], zi[2 * channels], zi[2 * channels + 1]};
    double right[4] = {0.0, 0.0, 0.0, 0.0};
    const double w0 = weights[0], w1 = channels == 2 ? weights[1] : 0.0;
    if (channels == 2) {
        right[0] = zi[2]; right[1] = zi[3]; right[2] = zi[6]; right[3] = zi[7];
        for (int64_t i = 0; i < n; i++) {
            double l = x32 ? (double)x32[2 * i] : x64[2 * i];
            double r = x32 ? (double)x32[2 * i + 1] : x64[2 * i + 1];
            l = two_sections(k, left, l);
            r = two_sections(k, right, r);
            double total = 0.0;
            total += w0 * (l * l);
            total += w1 * (r * r);
            energy[i] = total;
        }
        zi[2] = right[0]; zi[3] = right[1]; zi[6] = right[2]; zi[7] = right[3];
    } else {
        for (int64_t i = 0; i < n; i++) {
            double y = two_sections(k, left, x32 ? (double)x32[i] : x64[i]);
            double total = 0.0;
            total += w0 * (y * y);
            energy[i] = total;
        }
    }
    zi[0] = left[0]; zi[1] = left[1]; zi[2 * channels] = left[2]; zi[2 * channels + 1] = left[3];
}

static void weighted_energy(const double *sos, int64_t sections, const float *x32, const double *x64,
                            int64_t n, int64_t channels, double *zi, const double *weights,
                            double *energy) {
    if (sections == 2 && (channels == 1 || channels == 2))
        weighted_energy_two_sections(sos, x32, x64, n, channels, zi, weights, energy);
    else
        weighted_energy_impl(sos, sections, x32, x64, n, channels, zi, weights, energy);
}

void sp_weighted_energy_f32(const double *sos, int64_t sections, const float *x, int64_t n,
                            int64_t channels, double *zi, const double *weights, double *energy) {
    weighted_energy(sos, sections, x, NULL, n, channels, zi, weights, energy);
}

void sp_weighted_energy_f64(const double *sos, int64_t sections, const double *x, int64_t n,
                            int64_t channels, double *zi, const double *weights, double *energy) {
    weighted_energy(sos, sections, NULL, x, n, channels, zi, weights, energy);
}

/* ---- YIN after the autocorrelation (engine/pitch.py) ------------------------------------ */

/*
 * Per row r of acf ([n, acf_stride]: lags 0..max_period first, acf_stride > max_period) and
 * frames ([n, frame_length] float32): the cumulative-mean normalised difference d over lags
 * min_period..max_period, the first trough below threshold (else the first NaN, else
 * numpy's argmin), the parabola at that lag; f0[r] in Hz, voiced[r] = 1 when the trough was
 * below the threshold.
 * d is scratch of max_period - min_period + 1 doubles.
 */
void sp_yin_rows(const double *acf, int64_t acf_stride, const float *frames, int64_t n,
                 int64_t frame_length, int64_t min_period, int64_t max_period, double rate, double threshold,
                 double *f0, uint8_t *voiced, double *d) {
    const int64_t width = max_period - min_period + 1;
    for (int64_t r = 0; r < n; r++) {
        const double *a = acf + r * acf_stride;
        const float *frame = frames + r * frame_length;
        double energy = 0.0, running = 0.0;
        for (int64_t k = 1; k <= max_period; k++) {
            double sample = (double)frame[k - 1];
            energy += sample * sample;
            double diff = 2.0 * (a[0] - a[k]) - energy;
            running += diff;
            if (k >= min_period) d[k - min_period] = diff / (running / (double)k + DBL_MIN);
        }
        int64_t period = -1;
        for (int64_t i = 0; i < width - 1; i++) {
            int trough = i == 0 ? d[i] < d[1] : (d[i] < d[i - 1] && d[i] <= d[i + 1]);
            if (trough && d[i] < threshold) {
                period = i;
                break;
            }
        }
        voiced[r] = period >= 0;
        if (period < 0) {
            period = 0;
            for (int64_t i = 0; i < width; i++) {
                if (isnan(d[i])) {
                    period = i;
                    break;
                }
                if (d[i] < d[period]) period = i;
            }
        }
        double shift = 0.0;
        if (period > 0 && period < width - 1) {
            double left = d[period - 1], mid = d[period], right = d[period + 1];
            double curve = right + left - 2.0 * mid;
            double slope = (right - left) / 2.0;
            if (!(fabs(slope) >= fabs(curve))) {
                shift = -slope / curve;
                if (isnan(shift))
                    shift = 0.0;
                else if (isinf(shift))
                    shift = shift > 0 ? DBL_MAX : -DBL_MAX;
            }
        }
        f0[r] = rate / ((double)(min_period + period) + shift);
    }
}

/* ---- exact sliding median (engine/median.py) -------------------------------------------- */

/*
 * out[r, j] = median of x[r, j : j + k] for x [rows, n] float32 (finite), out
 * [rows, n - k + 1]: one sorted window per row, each step deletes the outgoing value and
 * inserts the incoming one by shifting. win is scratch of k floats.
 */
void sp_sliding_median_rows(const float *x, int64_t rows, int64_t n, int64_t k, float *out,
                            float *win) {
    const int64_t half = k / 2, outputs = n - k + 1;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        float *dst = out + r * outputs;
        for (int64_t i = 0; i < k; i++) { /* insertion sort of the first window */
            float v = row[i];
            int64_t p = i;
            while (p > 0 && win[p - 1] > v) {
                win[p] = win[p - 1];
                p--;
            }
            win[p] = v;
        }
        dst[0] = win[half];
        for (int64_t j = 1; j < outputs; j++) {
            float old = row[j - 1], new_value = row[j + k - 1];
            int64_t p = 0;
            while (p < k - 1 && win[p] != old) p++;
            if (new_value > old) {
                while (p < k - 1 && win[p + 1] < new_value) {
                    win[p] = win[p + 1];
                    p++;
                }
            } else {
                while (p > 0 && win[p - 1] > new_value) {
                    win[p] = win[p - 1];
                    p--;
                }
            }
            win[p] = new_value;
            dst[j] = win[half];
        }
    }
}

/* ---- per-segment sums of the native-rate meters (engine/native.py) ---------------------- */

/*
 * Segment j holds the samples starts[j] .. starts[j + 1] - 1 (the last one up to n) of x
 * ([n, channels] float32, channels >= 2): out[4 j + 0..3] are the float64 sums, in sample
 * order, of L^2, R^2, L R and S^2 with S = (L - R) / 2, L and R the first two channels.
 */
void sp_stereo_segments(const float *x, int64_t n, int64_t channels, const int64_t *starts,
                        int64_t segments, double *out) {
    for (int64_t j = 0; j < segments; j++) {
        int64_t end = j + 1 < segments ? starts[j + 1] : n;
        double ll = 0.0, rr = 0.0, lr = 0.0, ss = 0.0;
        for (int64_t i = starts[j]; i < end; i++) {
            double left = (double)x[i * channels], right = (double)x[i * channels + 1];
            double side = (left - right) * 0.5;
            ll += left * left;
            rr += right * right;
            lr += left * right;
            ss += side * side;
        }
        out[4 * j] = ll;
        out[4 * j + 1] = rr;
        out[4 * j + 2] = lr;
        out[4 * j + 3] = ss;
    }
}

/*
 * The same segments for the crest meter: squares[j] is the float64 sum of x^2 over the
 * segment's samples and all channels, peaks[j] the largest |x| (0 for an empty segment).
 */
void sp_crest_segments(const float *x, int64_t n, int64_t channels, const int64_t *starts,
                       int64_t segments, double *squares, double *peaks) {
    for (int64_t j = 0; j < segments; j++) {
        int64_t end = j + 1 < segments ? starts[j + 1] : n;
        double total = 0.0, peak = 0.0;
        for (int64_t i = starts[j] * channels; i < end * channels; i++) {
            double value = (double)x[i];
            total += value * value;
            double magnitude = fabs(value);
            if (magnitude > peak) peak = magnitude;
        }
        squares[j] = total;
        peaks[j] = peak;
    }
}

/* ---- harmonic-head proxies (engine/heads.py) --------------------------------------------- */

/*
 * Box means along each row: for x [rows, n] float32 and index [m] (m = n + width, the
 * reflected positions -half - 1 .. n + half - 1 of the row, a leading column first),
 * out[r, f] = (c[f + width] - c[f]) / width with c the float32 running sum of
 * x[r, index[0..m-1]]: numpy's cumsum of the gathered row, then the difference, in the
 * same operations and order. scratch holds m floats.
 */
void sp_box_mean_rows(const float *x, int64_t rows, int64_t n, const int64_t *index, int64_t m,
                      int64_t width, float *out, float *scratch) {
    const float divisor = (float)width;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = x + r * n;
        float total = 0.0f;
        for (int64_t j = 0; j < m; j++) {
            total += row[index[j]];
            scratch[j] = total;
        }
        float *dst = out + r * n;
        for (int64_t f = 0; f < n; f++) dst[f] = (scratch[f + width] - scratch[f]) / divisor;
    }
}

/*
 * The exponent of the harmonic soft mask, before its exp (engine/heads.py harmonic_proxies).
 * window [k + 2 context, n] float32 log magnitudes of frames t - context .. t + context
 * (context >= 1, so the window has rows even for k = 0); log_freq [k, n]. With c the
 * float32 running sums of the window's rows (per bin, numpy's cumsum along axis 0),
 * s[i] = c[i + context] - c[i - 1]
 * (s[0] = c[context]) sums rows i .. i + context, and
 *   ln H~[j] = max(s[j], s[j + context]) / (context + 1),
 *   out[j]   = clip(2 (log_freq[j] - ln H~[j]), -60, 60).
 * csum is scratch of (k + 2 context) n floats.
 */
void sp_harmonic_exponent(const float *window, int64_t k, int64_t n, int64_t context,
                          const float *log_freq, float *out, float *csum) {
    const int64_t rows = k + 2 * context;
    const float half = (float)(context + 1);
    memcpy(csum, window, (size_t)n * sizeof(float));
    for (int64_t i = 1; i < rows; i++) {
        const float *prev = csum + (i - 1) * n, *add = window + i * n;
        float *cur = csum + i * n;
        for (int64_t f = 0; f < n; f++) cur[f] = prev[f] + add[f];
    }
    for (int64_t j = 0; j < k; j++) {
        const float *left_end = csum + (j + context) * n, *left_before = j ? csum + (j - 1) * n : NULL;
        const float *right_end = csum + (j + 2 * context) * n, *right_before = csum + (j + context - 1) * n;
        const float *lf = log_freq + j * n;
        float *dst = out + j * n;
        for (int64_t f = 0; f < n; f++) {
            float left = left_before ? left_end[f] - left_before[f] : left_end[f];
            float right = right_end[f] - right_before[f];
            float level = (left > right ? left : right) / half;
            float e = 2.0f * (lf[f] - level);
            dst[f] = e < -60.0f ? -60.0f : (e > 60.0f ? 60.0f : e);
        }
    }
}

/* numpy's float64 pairwise sum of 8 <= count <= 128 values (count a multiple of 8). */
static double pairwise8(const double *a, int64_t count) {
    double r[8];
    for (int q = 0; q < 8; q++) r[q] = a[q];
    for (int64_t i = 8; i < count; i += 8)
        for (int q = 0; q < 8; q++) r[q] += a[i + q];
    return ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
}

/*
 * The proxy fractions from exp_term = exp(exponent) [k, n] (numpy's exp, so the bits are
 * numpy's), power [k, n] and energy [k] (float64): mask m = 1 / (1 + exp_term) in float32,
 * per band b of width bins (bands * width <= n, width a multiple of 8 up to 128)
 *   out[j, b]         = sum_band float64(m m X^2) / energy[j],
 *   out[j, bands + b] = sum_band float64((1 - m) (1 - m) X^2) / energy[j]
 * (0 where energy is 0), stored as float32: the operations and summation order of the
 * numpy definition. scratch holds 2 width doubles.
 */
void sp_harmonic_bands(const float *exp_term, const float *power, const double *energy, int64_t k,
                       int64_t n, int64_t bands, int64_t width, float *out, double *scratch) {
    double *harm = scratch, *perc = scratch + width;
    for (int64_t j = 0; j < k; j++) {
        const float *e = exp_term + j * n, *x2 = power + j * n;
        double scale = energy[j] > 0 ? 1.0 / energy[j] : 0.0;
        float *dst = out + j * 2 * bands;
        for (int64_t b = 0; b < bands; b++) {
            for (int64_t i = 0; i < width; i++) {
                int64_t f = b * width + i;
                float mask = 1.0f / (1.0f + e[f]);
                float rest = 1.0f - mask;
                harm[i] = (double)(mask * mask * x2[f]);
                perc[i] = (double)(rest * rest * x2[f]);
            }
            dst[b] = (float)(pairwise8(harm, width) * scale);
            dst[bands + b] = (float)(pairwise8(perc, width) * scale);
        }
    }
}

/* ---- YIN's block autocorrelation (engine/pitch.py) --------------------------------------- */

/*
 * The half spectrum [n, bins] (complex128, interleaved re/im) of each frame's lags from the
 * half spectra X [m, bins] of the blocks; frame f holds blocks first[f] .. first[f] + blocks - 1:
 *   out_f = sum_b |X_b|^2 + (-1)^k sum_b conj(X_b) X_{b+1}   (b over the frame's blocks),
 * added in the order of the numpy expression (block_spectrum_numpy in
 * tests/unit/test_pitch_fft.py): power + cross of the first block, then for each further
 * block + power, + cross (but the last).
 * Each block's power and its cross term with the next block are formed once, into power
 * [m, bins] and cross [m - 1, bins] (complex, interleaved; scratch the caller provides), and
 * shared by every frame that holds them: consecutive frames share blocks - 1 of theirs, so
 * the products are made about blocks times less often. The sums are the same operations in
 * the same order as forming each product where it is added, so the same bits.
 * The caller guarantees first[f] + blocks <= m.
 */
void sp_block_acf_spectrum(const double *spectra, const int64_t *first, int64_t n, int64_t m,
                           int64_t blocks, int64_t bins, double *power, double *cross, double *out) {
    for (int64_t b = 0; b < m; b++) {
        const double *x = spectra + 2 * b * bins, *y = x + 2 * bins;
        double *p = power + b * bins, *c = cross + 2 * b * bins;
        for (int64_t k = 0; k < bins; k++) p[k] = x[2 * k] * x[2 * k] + x[2 * k + 1] * x[2 * k + 1];
        if (b == m - 1) break;
        for (int64_t k = 0; k < bins; k++) {
            /* conj(x) * y = (x0 - i x1)(y0 + i y1), then by sign (numpy's expression;
             * its complex multiply rounds differently in the last place) */
            const double sign = (k & 1) ? -1.0 : 1.0;
            const double x0 = x[2 * k], x1 = x[2 * k + 1], y0 = y[2 * k], y1 = y[2 * k + 1];
            c[2 * k] = (x0 * y0 - (-x1) * y1) * sign;
            c[2 * k + 1] = (x0 * y1 + (-x1) * y0) * sign;
        }
    }
    for (int64_t f = 0; f < n; f++) {
        double *dst = out + 2 * f * bins;
        for (int64_t b = 0; b < blocks; b++) {
            const int64_t block = first[f] + b;
            const double *p = power + block * bins, *c = cross + 2 * block * bins;
            const int has_cross = b < blocks - 1;
            for (int64_t k = 0; k < bins; k++) {
                double re = b ? dst[2 * k] + p[k] : p[k];
                double im = b ? dst[2 * k + 1] + 0.0 : 0.0;
                if (has_cross) {
                    re = re + c[2 * k];
                    im = im + c[2 * k + 1];
                }
                dst[2 * k] = re;
                dst[2 * k + 1] = im;
            }
        }
    }
}

/*
 * out[r] (r < n - 1) = 1 when frame r + 1 of frames [n, length] starts hop samples after
 * frame r: its first length - hop samples are frame r's last, bit for bit (memcmp, so -0.0
 * and 0.0 differ: a frame is only taken for its neighbour's continuation when the samples
 * are the same bits).
 */
void sp_consecutive_rows(const float *frames, int64_t n, int64_t length, int64_t hop, uint8_t *out) {
    const size_t overlap = (size_t)(length - hop) * sizeof(float);
    for (int64_t r = 0; r + 1 < n; r++)
        out[r] = memcmp(frames + (r + 1) * length, frames + r * length + hop, overlap) == 0;
}

/* ---- frame RMS (engine/analysis.py, runtime/graph.py) ------------------------------------ */

/* numpy's pairwise sum of the squares of x[0..n) in double (its DOUBLE_pairwise_sum, which
 * np.add.reduce runs along a contiguous row: eight accumulators over blocks of at most 128,
 * halves above that), so the same bits as np.sum(np.square(x, dtype=np.float64)). */
static double pairwise_sum_of_squares(const float *x, int64_t n) {
    if (n < 8) {
        double res = 0.0;
        for (int64_t i = 0; i < n; i++) res += (double)x[i] * (double)x[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++) r[j] = (double)x[j] * (double)x[j];
        int64_t i = 8;
        for (; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += (double)x[i + j] * (double)x[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += (double)x[i] * (double)x[i];
        return res;
    }
    int64_t half = n / 2;
    half -= half % 8;
    return pairwise_sum_of_squares(x, half) + pairwise_sum_of_squares(x + half, n - half);
}

/* rms[r] = sqrt(mean(frames[r]^2)) in double for frames [n, length] float32: the bits of
 * np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)) (numpy adds to its identity
 * 0.0, then divides by length), without the float64 copy of the frames. */
void sp_frame_rms(const float *frames, int64_t n, int64_t length, double *rms) {
    for (int64_t r = 0; r < n; r++)
        rms[r] = sqrt((0.0 + pairwise_sum_of_squares(frames + r * length, length)) / (double)length);
}
