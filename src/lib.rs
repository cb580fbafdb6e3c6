pub mod backend;
pub mod home;
pub mod logs;
pub mod manifest;
pub mod model;
pub mod store;
