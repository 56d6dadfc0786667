/* libFuzzer: entitlement validation on arbitrary bytes.
 *
 * The input is split on NUL bytes into up to four fields: principal, location
 * scope, data source prefix, access. Each field goes through its validator
 * (unterminated views), then all of them through desired_build as one row, so
 * the join, the unset-principal ARN builder and the sub-prefix builder see
 * hostile input too. Invariants are checked with __builtin_trap().
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/desired.h"
#include "core/validate.h"
#include "core/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_why(int r, const char *why)
{
	if (r == 0)
		return;
	if (r != S3G_EINVAL || !why || !strchr(why, ':'))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *f[4] = {0};
	size_t len[4] = {0}, nf = 0, start = 0;
	enum validate_principal kind;
	enum grant_perm perm;
	size_t off, plen, blen;
	const char *why = NULL;
	const char *scope;
	int r;

	for (size_t i = 0; i <= size && nf < 4; i++) {
		if (i == size || data[i] == 0) {
			f[nf] = x_strndup((const char *)data + start, i - start);
			len[nf] = i - start;
			nf++;
			start = i + 1;
		}
	}
	for (; nf < 4; nf++)
		f[nf] = x_strdup("");

	/* unterminated views: copy to an exact-size buffer so ASan sees overreads */
	for (int k = 0; k < 4; k++) {
		char *exact = x_malloc(len[k] ? len[k] : 1);

		memcpy(exact, f[k], len[k]);
		r = validate_principal(exact, len[k], &kind, &why);
		check_why(r, why);
		r = validate_iam_name(exact, len[k], &why);
		check_why(r, why);
		r = validate_bucket(exact, len[k], &why);
		check_why(r, why);
		r = validate_location_scope(exact, len[k], &blen, &why);
		check_why(r, why);
		if (r == 0 && blen > len[k])
			__builtin_trap();
		r = validate_access(exact, len[k], &perm, &why);
		check_why(r, why);
		x_free(exact);
	}

	scope = validate_location_scope(f[1], len[1], NULL, &why) == 0 ? f[1] : "s3://";
	r = validate_prefix(scope, f[2], len[2], &off, &plen, &why);
	check_why(r, why);
	if (r == 0) {
		/* the normalised view lies inside the input and is itself a fixed point */
		size_t off2, plen2;

		if (off + plen > len[2])
			__builtin_trap();
		if (plen && strcmp(scope, "s3://") != 0) {
			if (validate_prefix(scope, f[2] + off, plen, &off2, &plen2, &why) != 0 || off2 != 0 ||
			    plen2 != plen)
				__builtin_trap();
		}
	}

	{
		const struct desired_integration integ = {1, "111122223333", "us-east-1", scope,
							  strcmp(scope, "s3://") ? "loc-1" : NULL};
		const struct desired_user users[] = {{1, f[0], f[0]}, {2, f[0], NULL}};
		const struct desired_data_source ds[] = {{1, f[2]}};
		const struct desired_subscription subs[] = {{1, 1, 1, f[3]}, {2, 2, 1, f[3]}, {3, 1, 1, "read"}};
		struct desired_set set;
		struct intern in;

		intern_init(&in);
		if (desired_build(&in, &integ, ds, 1, users, 2, subs, 3, &set, &why) != 0)
			__builtin_trap();
		if (set.n + set.nrej > 3 || set.n > 3)
			__builtin_trap();
		for (size_t i = 0; i < set.n; i++) {
			const struct grant *g = &set.v[i].g;

			if (strlen(g->sub_prefix) > VALIDATE_PREFIX_MAX || g->hash != grant_hash(g))
				__builtin_trap();
		}
		for (size_t i = 0; i < set.nrej; i++)
			check_why(S3G_EINVAL, set.rej[i].reason);
		desired_free(&set);
		intern_free(&in);
	}
	for (int k = 0; k < 4; k++)
		x_free(f[k]);
	return 0;
}
