pub mod exposition;
pub mod rate;
