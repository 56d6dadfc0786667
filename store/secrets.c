#include "store/secrets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "core/xalloc.h"

int secrets_key_path(const char *explicit_path, char **ret_path)
{
	const char *env, *dir;

	if (explicit_path && explicit_path[0]) {
		*ret_path = x_strdup(explicit_path);
		return 0;
	}
	env = getenv("S3GRANT_SECRETS_KEY_FILE");
	if (env && env[0]) {
		*ret_path = x_strdup(env);
		return 0;
	}
	dir = getenv("CREDENTIALS_DIRECTORY");
	if (dir && dir[0]) {
		*ret_path = x_asprintf("%s/secrets-key", dir);
		return 0;
	}
	return -ENOENT;
}

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int secrets_key_parse(const uint8_t *data, size_t n, struct secrets_key *ret_key)
{
	struct secrets_key k;
	uint8_t digest[SHA256_DIGEST_LENGTH];

	if (n == 64 || (n == 65 && data[64] == '\n')) {
		for (size_t i = 0; i < 32; i++) {
			int hi = hexval(data[2 * i]), lo = hexval(data[2 * i + 1]);

			if (hi < 0 || lo < 0) {
				OPENSSL_cleanse(&k, sizeof(k));
				return S3G_ECONFIG;
			}
			k.key[i] = (uint8_t)(hi << 4 | lo);
		}
	} else if (n == 32) {
		memcpy(k.key, data, 32);
	} else {
		return S3G_ECONFIG;
	}
	SHA256(k.key, sizeof(k.key), digest);
	memcpy(k.id, digest, sizeof(k.id));
	*ret_key = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

int secrets_key_load(const char *path, struct secrets_key *ret_key)
{
	uint8_t data[80];
	ssize_t n;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	while (got < sizeof(data)) {
		n = read(fd, data + got, sizeof(data) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	r = secrets_key_parse(data, got, ret_key);
out:
	OPENSSL_cleanse(data, sizeof(data));
	close(fd);
	return r;
}

void secrets_key_wipe(struct secrets_key *k)
{
	if (k)
		OPENSSL_cleanse(k, sizeof(*k));
}

static int set_aad(EVP_CIPHER_CTX *ctx, const uint8_t *hdr, const char *context)
{
	int len;

	if (EVP_CipherUpdate(ctx, NULL, &len, hdr, 5) != 1)
		return S3G_EINVAL;
	if (context && EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)context,
					(int)strlen(context)) != 1)
		return S3G_EINVAL;
	return 0;
}

int secrets_seal(const struct secrets_key *k, const char *context, const void *plain, size_t n,
		 uint8_t **ret_env, size_t *ret_len)
{
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *env = NULL;
	size_t len = SECRETS_HEADER + n + SECRETS_TAG;
	int outl, r = S3G_EINVAL;

	if (n > SECRETS_MAX_PLAIN)
		return S3G_ETOOBIG;
	env = x_malloc(len);
	env[0] = SECRETS_VERSION;
	memcpy(env + 1, k->id, 4);
	if (RAND_bytes(env + 5, 12) != 1)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, env + 5) != 1)
		goto out;
	r = set_aad(ctx, env, context);
	if (r < 0)
		goto out;
	r = S3G_EINVAL;
	if (n && EVP_EncryptUpdate(ctx, env + SECRETS_HEADER, &outl, plain, (int)n) != 1)
		goto out;
	if (EVP_EncryptFinal_ex(ctx, env + SECRETS_HEADER + n, &outl) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETS_TAG, env + SECRETS_HEADER + n) != 1)
		goto out;
	*ret_env = env;
	*ret_len = len;
	env = NULL;
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	x_free(env);
	return r;
}

int secrets_open(const struct secrets_key *k, const char *context, const uint8_t *env, size_t len,
		 char **ret_plain, size_t *ret_n)
{
	EVP_CIPHER_CTX *ctx = NULL;
	char *plain = NULL;
	size_t n;
	int outl, r = S3G_EPARSE;

	if (len < SECRETS_HEADER + SECRETS_TAG || env[0] != SECRETS_VERSION)
		return S3G_EPARSE;
	if (memcmp(env + 1, k->id, 4) != 0)
		return S3G_ECONFIG;
	n = len - SECRETS_HEADER - SECRETS_TAG;
	if (n > SECRETS_MAX_PLAIN)
		return S3G_ETOOBIG;
	plain = x_malloc(n + 1);
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k->key, env + 5) != 1)
		goto out;
	if (set_aad(ctx, env, context) < 0)
		goto out;
	if (n && EVP_DecryptUpdate(ctx, (uint8_t *)plain, &outl, env + SECRETS_HEADER, (int)n) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETS_TAG,
				(void *)(uintptr_t)(env + SECRETS_HEADER + n)) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, (uint8_t *)plain + n, &outl) != 1)
		goto out;
	plain[n] = '\0';
	*ret_plain = plain;
	*ret_n = n;
	plain = NULL;
	r = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	if (plain) {
		OPENSSL_cleanse(plain, n + 1);
		x_free(plain);
	}
	return r;
}
