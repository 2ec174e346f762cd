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
#define SP_ABI_VERSION 2

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

void sp_weighted_energy_f32(const double *sos, int64_t sections, const float *x, int64_t n,
                            int64_t channels, double *zi, const double *weights, double *energy) {
    weighted_energy_impl(sos, sections, x, NULL, n, channels, zi, weights, energy);
}

void sp_weighted_energy_f64(const double *sos, int64_t sections, const double *x, int64_t n,
                            int64_t channels, double *zi, const double *weights, double *energy) {
    weighted_energy_impl(sos, sections, NULL, x, n, channels, zi, weights, energy);
}

/* ---- YIN after the autocorrelation (engine/pitch.py) ------------------------------------ */

/*
 * Per row r of acf ([n, max_period + 1], lags 0..max_period) and frames ([n, frame_length]
 * float32): the cumulative-mean normalised difference d over lags min_period..max_period,
 * the first trough below threshold (else the first NaN, else numpy's argmin), the parabola
 * at that lag; f0[r] in Hz, voiced[r] = 1 when the trough was below the threshold.
 * d is scratch of max_period - min_period + 1 doubles.
 */
void sp_yin_rows(const double *acf, const float *frames, int64_t n, int64_t frame_length,
                 int64_t min_period, int64_t max_period, double rate, double threshold,
                 double *f0, uint8_t *voiced, double *d) {
    const int64_t width = max_period - min_period + 1;
    const int64_t lags = max_period + 1;
    for (int64_t r = 0; r < n; r++) {
        const double *a = acf + r * lags;
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
