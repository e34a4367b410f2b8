pub mod nonlinear;
