pub mod annotated;
