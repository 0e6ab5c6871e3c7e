//! The one place where errors become errno values.

use fuser::Errno;

use crate::tree::TreeError;

pub fn errno(err: &TreeError) -> Errno {
    let code = match err {
        TreeError::NotFound => libc::ENOENT,
        TreeError::Exists => libc::EEXIST,
        TreeError::NotDir => libc::ENOTDIR,
        TreeError::IsDir => libc::EISDIR,
        TreeError::NotEmpty => libc::ENOTEMPTY,
        TreeError::StatusFileReadOnly => libc::EACCES,
        TreeError::OnlyAppDirectoriesHere | TreeError::TopLevelIsFixed => libc::EPERM,
        TreeError::CrossAppRename | TreeError::CrossAppLink => libc::EXDEV,
        TreeError::HardLinkToDirectory | TreeError::UnsupportedFileType => libc::EPERM,
        TreeError::UnknownCtlCommand | TreeError::InvalidArgument => libc::EINVAL,
        TreeError::BadDigestPrefix | TreeError::AmbiguousDigest { .. } => libc::EINVAL,
        TreeError::NoKeptTree(_) => libc::ENOENT,
        TreeError::AppBusy => libc::EBUSY,
        TreeError::KeptTreeDamaged(_) => libc::EIO,
        TreeError::BadHandle => libc::EBADF,
        TreeError::NameTooLong => libc::ENAMETOOLONG,
        TreeError::NoXattr => libc::ENODATA,
        TreeError::XattrExists => libc::EEXIST,
        TreeError::XattrNameTooLong | TreeError::XattrBufferTooSmall => libc::ERANGE,
        TreeError::XattrValueTooBig => libc::E2BIG,
        TreeError::XattrListFull => libc::ENOSPC,
        TreeError::XattrNamespaceUnsupported
        | TreeError::NotSupportedOnStatusFiles
        | TreeError::FallocateModeUnsupported => libc::EOPNOTSUPP,
        TreeError::XattrNeedsPrivilege | TreeError::UserXattrOnlyOnFilesAndDirs => libc::EPERM,
        TreeError::Io(io) => io.raw_os_error().unwrap_or(libc::EIO),
        TreeError::Meta(meta) => meta.errno(),
    };
    Errno::from_i32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_code() {
        let err = TreeError::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(errno(&err), Errno::from_i32(libc::ENOSPC));
        assert_eq!(errno(&TreeError::StatusFileReadOnly), Errno::EACCES);
        assert_eq!(errno(&TreeError::CrossAppLink), Errno::EXDEV);
    }

    #[test]
    fn xattr_errors_are_the_ones_ext4_gives() {
        let code = |err: TreeError| errno(&err);
        assert_eq!(code(TreeError::NoXattr), Errno::from_i32(libc::ENODATA));
        assert_eq!(code(TreeError::XattrExists), Errno::EEXIST);
        assert_eq!(code(TreeError::XattrNameTooLong), Errno::ERANGE);
        assert_eq!(code(TreeError::XattrBufferTooSmall), Errno::ERANGE);
        assert_eq!(code(TreeError::XattrValueTooBig), Errno::E2BIG);
        assert_eq!(code(TreeError::XattrNeedsPrivilege), Errno::EPERM);
        assert_eq!(
            code(TreeError::XattrNamespaceUnsupported),
            Errno::from_i32(libc::EOPNOTSUPP)
        );
        assert_eq!(
            code(TreeError::FallocateModeUnsupported),
            Errno::from_i32(libc::EOPNOTSUPP)
        );
    }
}
