"""Files to storage: streamed in chunks, their SHA-256 computed in the same pass."""

import hashlib
import io

from django.core.files import File

COPY_CHUNK_BYTES = 1024 * 1024


def size_of(fileobj):
    size = getattr(fileobj, "size", None)
    if isinstance(size, int):
        return size
    here = fileobj.tell()
    end = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(here)
    return end


class HashingFile(File):
    """A Django File that computes the SHA-256 of what storage reads from it, in the same pass.

    Storage backends read from the start (after ``seek(0)``, which restarts the digest); should one
    seek elsewhere, the digest is computed again from the source after the copy.
    """

    def __init__(self, fileobj):
        super().__init__(fileobj, name="upload")
        self._digest = hashlib.sha256()
        self._position = 0
        self._hashed_in_order = True
        self.bytes_read = 0
        fileobj.seek(0)

    def read(self, size=-1):
        data = self.file.read(size)
        self._digest.update(data)
        self._position += len(data)
        self.bytes_read = max(self.bytes_read, self._position)
        return data

    def seek(self, offset, whence=io.SEEK_SET):
        position = self.file.seek(offset, whence)
        if position == 0:
            self._digest = hashlib.sha256()
            self._hashed_in_order = True
            self.bytes_read = 0
        elif position != self._position:
            self._hashed_in_order = False
        self._position = position
        return position

    def hexdigest(self):
        if self._hashed_in_order and self.bytes_read == size_of(self.file):
            return self._digest.hexdigest()
        digest = hashlib.sha256()
        self.file.seek(0)
        self.bytes_read = 0
        while chunk := self.file.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
            self.bytes_read += len(chunk)
        return digest.hexdigest()
