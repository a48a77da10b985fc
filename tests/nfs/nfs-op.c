/*
 * nfs-op: a libnfs client for wirebeat's live NFS tests, for the operations libnfs-utils
 * (nfs-ls, nfs-cat, nfs-cp) has no tool for.
 *
 *   nfs-op 'nfs://host/export?nfsport=N&mountport=N&version=3' OP ARGS... [OP ARGS...]
 *
 * OP: stat PATH | mkdir PATH | rmdir PATH | unlink PATH | rename FROM TO |
 *     write PATH TEXT | read PATH | chmod PATH OCTAL | ls PATH
 * One line per operation on stdout: "OP PATH rc=N[ error]"; exit status 0 when the mount
 * worked. Built by scripts/setup.d/60-nfs.sh with `cc ... -lnfs`.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nfsc/libnfs.h>

static void report(struct nfs_context *nfs, const char *op, const char *path, int rc)
{
	if (rc < 0)
		printf("%s %s rc=%d %s\n", op, path, rc, nfs_get_error(nfs));
	else
		printf("%s %s rc=%d\n", op, path, rc);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: nfs-op URL OP ARGS...\n");
		return 2;
	}
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *url = nfs_parse_url_dir(nfs, argv[1]);
	if (url == NULL) {
		fprintf(stderr, "bad url: %s\n", nfs_get_error(nfs));
		return 2;
	}
	if (nfs_mount(nfs, url->server, url->path) != 0) {
		fprintf(stderr, "mount failed: %s\n", nfs_get_error(nfs));
		return 1;
	}
	for (int i = 2; i < argc;) {
		const char *op = argv[i++];
		const char *path = i < argc ? argv[i++] : "";
		int rc = 0;
		if (!strcmp(op, "stat")) {
			struct nfs_stat_64 st;
			rc = nfs_stat64(nfs, path, &st);
			if (rc == 0)
				printf("size %s %" PRIu64 "\n", path, (uint64_t)st.nfs_size);
		} else if (!strcmp(op, "mkdir")) {
			rc = nfs_mkdir(nfs, path);
		} else if (!strcmp(op, "rmdir")) {
			rc = nfs_rmdir(nfs, path);
		} else if (!strcmp(op, "unlink")) {
			rc = nfs_unlink(nfs, path);
		} else if (!strcmp(op, "rename")) {
			rc = nfs_rename(nfs, path, argv[i++]);
		} else if (!strcmp(op, "chmod")) {
			rc = nfs_chmod(nfs, path, (int)strtol(argv[i++], NULL, 8));
		} else if (!strcmp(op, "write")) {
			const char *text = argv[i++];
			struct nfsfh *fh;
			rc = nfs_creat(nfs, path, 0644, &fh);
			if (rc == 0) {
				rc = nfs_write(nfs, fh, strlen(text), (void *)text);
				nfs_close(nfs, fh);
			}
		} else if (!strcmp(op, "read")) {
			struct nfsfh *fh;
			char buf[65536];
			rc = nfs_open(nfs, path, O_RDONLY, &fh);
			if (rc == 0) {
				rc = nfs_read(nfs, fh, sizeof(buf), buf);
				nfs_close(nfs, fh);
			}
		} else if (!strcmp(op, "ls")) {
			struct nfsdir *dir;
			rc = nfs_opendir(nfs, path, &dir);
			if (rc == 0) {
				struct nfsdirent *e;
				while ((e = nfs_readdir(nfs, dir)) != NULL)
					printf("entry %s %s\n", path, e->name);
				nfs_closedir(nfs, dir);
			}
		} else {
			fprintf(stderr, "unknown op %s\n", op);
			return 2;
		}
		report(nfs, op, path, rc);
	}
	nfs_destroy_url(url);
	nfs_destroy_context(nfs);
	return 0;
}
