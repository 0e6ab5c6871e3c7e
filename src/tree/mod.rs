//! The namespace: inodes, directories, open handles, the virtual `.pushfs/` files.
