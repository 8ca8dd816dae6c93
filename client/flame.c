/*
 * flame.c: pygcprofiler's flame graphs: GC time per time bucket,
 * generation and pause duration bucket (flame_add, fed by watch.c), written
 * as folded stacks (--flamegraph-file) or drawn in the terminal
 * (--terminal-flamegraph, also as a JSON object). Called by watch.c and
 * pygcprofiler.c. Writes only the file it is given and the FILE it is
 * given; never holds more than PGP_MAX_FLAME_ROWS rows.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "pgp.h"

void flame_add(struct pgp_run *r, double t, unsigned gen, size_t b, double ms)
{
	double rel = t - r->start_real;
	double idx = rel > 0 ? rel / r->o->flame_bucket_s : 0;
	size_t row;

	/* Compared as a double: a far-off time must not overflow the cast. */
	if (!(idx < PGP_MAX_FLAME_ROWS)) {
		r->flame_skipped++;
		return;
	}
	row = (size_t)idx;
	if (row >= r->nflame) {
		size_t n = row + 1 > r->nflame * 2 ? row + 1 : r->nflame * 2;
		struct pgp_flame_row *f;

		if (n > PGP_MAX_FLAME_ROWS)	/* doubling must keep the cap */
			n = PGP_MAX_FLAME_ROWS;
		if ((f = realloc(r->flame, n * sizeof *f)) == NULL)
			return;		/* flame graph loses this event */
		memset(f + r->nflame, 0, (n - r->nflame) * sizeof *f);
		r->flame = f;
		r->nflame = n;
	}
	r->flame[row].ms[gen][b] += ms;
}

static void flame_bucket_label(const struct pgp_opts *o, size_t b, char *buf,
    size_t len)
{
	if (b == 0)
		snprintf(buf, len, "<%gms", o->buckets[0]);
	else if (b < o->nbuckets)
		snprintf(buf, len, "%g-%gms", o->buckets[b - 1], o->buckets[b]);
	else
		snprintf(buf, len, ">=%gms", o->buckets[o->nbuckets - 1]);
}

/*
 * v rounded half away from zero, for v >= 0 (0 for anything else, NaN
 * too): llround, but without libm, which the launcher would otherwise
 * map at every start (-lm is --as-needed).
 */
static unsigned long long flame_round(double v)
{
	unsigned long long t;

	if (!(v > 0))
		return 0;
	if (v >= 0x1p63)
		return 1ull << 63;
	t = (unsigned long long)v;	/* exact below 2^53; v integral above */
	return t + (v - (double)t >= 0.5);
}

/* Folded stacks: "T+5s;Gen 2;5-20ms 1234" (T+0.5s for buckets under 1 s)
 * with GC time in microseconds as the sample weight (flamegraph.pl and
 * speedscope want integers). */
int flame_write_file(const struct pgp_run *r, const char *path)
{
	char label[64];
	size_t row, b;
	unsigned g;
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (f == NULL) {
		int err = -errno;

		close(fd);
		return err;
	}
	for (row = 0; row < r->nflame; row++)
		for (g = 0; g < r->ngen_seen; g++)
			for (b = 0; b <= r->o->nbuckets; b++) {
				double ms = r->flame[row].ms[g][b];
				unsigned long long us;

				if (ms <= 0)
					continue;
				us = flame_round(ms * 1000.0);
				flame_bucket_label(r->o, b, label, sizeof label);
				fprintf(f, "T+%gs;Gen %u;%s %llu\n",
				    (double)row * r->o->flame_bucket_s, g, label,
				    us ? us : 1);
			}
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static const char flame_gen_chars[] = ".+#@%*=-";
static const char *const flame_gen_colors[] = {
	"\033[38;5;82m", "\033[38;5;214m", "\033[38;5;196m", "\033[38;5;125m",
	"\033[38;5;33m", "\033[38;5;93m", "\033[38;5;250m", "\033[38;5;240m",
};

/* GC time of one row by generation (gen_ms[PGP_MAX_GEN]); the total. */
static double flame_row_gens(const struct pgp_run *r, size_t row,
    double *gen_ms)
{
	double total = 0;
	unsigned g;
	size_t b;

	for (g = 0; g < PGP_MAX_GEN; g++) {
		gen_ms[g] = 0;
		for (b = 0; b <= r->o->nbuckets; b++)
			gen_ms[g] += r->flame[row].ms[g][b];
		total += gen_ms[g];
	}
	return total;
}

json_t *flame_terminal_json(const struct pgp_run *r)
{
	const struct pgp_opts *o = r->o;
	double gen_ms[PGP_MAX_GEN], total;
	json_t *rows = json_array(), *gens;
	size_t row;
	unsigned g;

	for (row = 0; row < r->nflame; row++) {
		total = flame_row_gens(r, row, gen_ms);
		if (total <= 0)
			continue;
		gens = json_array();
		for (g = 0; g < r->ngen_seen; g++)
			json_array_append_new(gens, json_real(gen_ms[g]));
		json_array_append_new(rows, json_pack("{s:f,s:f,s:o}",
		    "t_s", (double)row * o->flame_bucket_s,
		    "gc_time_ms", total, "gen_ms", gens));
	}
	return json_pack("{s:s,s:f,s:o}", "type", "flamegraph",
	    "bucket_s", o->flame_bucket_s, "rows", rows);
}

static void flame_print_legend(const struct pgp_run *r, FILE *out)
{
	const struct pgp_opts *o = r->o;
	unsigned g;

	fputs("\n=== GC FLAME GRAPH (ASCII) ===\n", out);
	fputs("Legend:", out);
	for (g = 0; g < (r->ngen_seen ? r->ngen_seen : 3); g++) {
		if (o->term_color)
			fprintf(out, " %s%c\033[0m=Gen %u", flame_gen_colors[g],
			    flame_gen_chars[g], g);
		else
			fprintf(out, " %c=Gen %u", flame_gen_chars[g], g);
	}
	fprintf(out, " (bar: share of the bucket's GC time; bucket %gs)\n",
	    o->flame_bucket_s);
}

/* One bar split by the share of the bucket's GC time each generation
 * took; the last generation with time fills it to the width. */
static void flame_print_bar(const struct pgp_run *r, FILE *out,
    const double *gen_ms, double total)
{
	const struct pgp_opts *o = r->o;
	long used = 0, w, k;
	unsigned g, later;

	for (g = 0; g < r->ngen_seen; g++) {
		if (gen_ms[g] <= 0)
			continue;
		later = g + 1;
		while (later < r->ngen_seen && gen_ms[later] <= 0)
			later++;
		w = (long)flame_round(gen_ms[g] / total *
		    (double)o->term_width);
		if (w < 1)
			w = 1;
		if (later == r->ngen_seen)	/* the last one fills the bar */
			w = o->term_width - used;
		if (w > o->term_width - used)
			w = o->term_width - used;
		if (o->term_color && w > 0)
			fputs(flame_gen_colors[g], out);
		for (k = 0; k < w; k++)
			fputc(flame_gen_chars[g], out);
		if (o->term_color && w > 0)
			fputs("\033[0m", out);
		used += w;
	}
	for (; used < o->term_width; used++)
		fputc(' ', out);
}

/* One row per time bucket with GC time. */
void flame_print_terminal(const struct pgp_run *r, FILE *out)
{
	double gen_ms[PGP_MAX_GEN], total;
	size_t row;
	unsigned g;
	int any = 0;
	char tl[32];

	flame_print_legend(r, out);
	for (row = 0; row < r->nflame; row++) {
		total = flame_row_gens(r, row, gen_ms);
		if (total <= 0)
			continue;
		any = 1;
		snprintf(tl, sizeof tl, "T+%gs",
		    (double)row * r->o->flame_bucket_s);
		fprintf(out, "%8s | ", tl);
		flame_print_bar(r, out, gen_ms, total);
		fprintf(out, " | %.2fms (", total);
		for (g = 0; g < r->ngen_seen; g++)
			fprintf(out, "%sG%u:%.2fms", g ? ", " : "", g, gen_ms[g]);
		fputs(")\n", out);
	}
	if (!any)
		fputs("No GC flame graph samples collected.\n", out);
}
