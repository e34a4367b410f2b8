//! Dormand–Prince 8(5,3): the explicit Runge–Kutta pair of order 8 with the error estimators of
//! orders 5 and 3 and the continuous extension of order 7 (Hairer, Nørsett & Wanner, *Solving
//! ODEs I*, 2nd ed., §II.10; the coefficients of Hairer's `DOP853`).
//!
//! One step costs 11 new right-hand-side evaluations (12 stages, the first is the last stage of
//! the previous step), one more on acceptance (f at the new point, reused as the next first
//! stage) and 3 more for the order-7 dense output. At the tight tolerances of the 2x2 learning
//! flows (rtol 1e-11 .. 1e-12) it needs 4-6x fewer steps than Dormand–Prince 5(4).
//!
//! The driver (step-size control, events, caps) is shared with DP45 in [`super::ode`]; this file
//! holds the tableau, one attempted step, the error norm and the dense-output coefficients.
//! Everything lives on the stack: a step allocates nothing.

// The coefficients are written with the 30 digits Hairer publishes, so that they can be compared
// digit for digit with the source; the compiler rounds them to the nearest f64.
#![allow(clippy::excessive_precision)]

use nalgebra::SVector;

use crate::Result;

/// Nodes c_i of the 12 stages and of the 3 extra stages of the dense output (c_1 = 0).
const C: [f64; 16] = [
    0.0,
    0.526001519587677318785587544488e-01,
    0.789002279381515978178381316732e-01,
    0.118350341907227396726757197510,
    0.281649658092772603273242802490,
    0.333333333333333333333333333333,
    0.25,
    0.307692307692307692307692307692,
    0.651282051282051282051282051282,
    0.6,
    0.857142857142857142857142857142,
    1.0,
    1.0,
    0.1,
    0.2,
    0.777777777777777777777777777778,
];

/// The rows a_{i,j} of the tableau: row i gives stage i + 1 from stages 1 ..= i (row 12 holds
/// the weights b of the 8th-order solution; rows 13 .. 15 the extra stages of the dense output).
const A: [[f64; 15]; 16] = {
    let mut a = [[0.0; 15]; 16];
    a[1][0] = 5.26001519587677318785587544488e-2;

    a[2][0] = 1.97250569845378994544595329183e-2;
    a[2][1] = 5.91751709536136983633785987549e-2;

    a[3][0] = 2.95875854768068491816892993775e-2;
    a[3][2] = 8.87627564304205475450678981324e-2;

    a[4][0] = 2.41365134159266685502369798665e-1;
    a[4][2] = -8.84549479328286085344864962717e-1;
    a[4][3] = 9.24834003261792003115737966543e-1;

    a[5][0] = 3.7037037037037037037037037037e-2;
    a[5][3] = 1.70828608729473871279604482173e-1;
    a[5][4] = 1.25467687566822425016691814123e-1;

    a[6][0] = 3.7109375e-2;
    a[6][3] = 1.70252211019544039314978060272e-1;
    a[6][4] = 6.02165389804559606850219397283e-2;
    a[6][5] = -1.7578125e-2;

    a[7][0] = 3.70920001185047927108779319836e-2;
    a[7][3] = 1.70383925712239993810214054705e-1;
    a[7][4] = 1.07262030446373284651809199168e-1;
    a[7][5] = -1.53194377486244017527936158236e-2;
    a[7][6] = 8.27378916381402288758473766002e-3;

    a[8][0] = 6.24110958716075717114429577812e-1;
    a[8][3] = -3.36089262944694129406857109825;
    a[8][4] = -8.68219346841726006818189891453e-1;
    a[8][5] = 2.75920996994467083049415600797e1;
    a[8][6] = 2.01540675504778934086186788979e1;
    a[8][7] = -4.34898841810699588477366255144e1;

    a[9][0] = 4.77662536438264365890433908527e-1;
    a[9][3] = -2.48811461997166764192642586468;
    a[9][4] = -5.90290826836842996371446475743e-1;
    a[9][5] = 2.12300514481811942347288949897e1;
    a[9][6] = 1.52792336328824235832596922938e1;
    a[9][7] = -3.32882109689848629194453265587e1;
    a[9][8] = -2.03312017085086261358222928593e-2;

    a[10][0] = -9.3714243008598732571704021658e-1;
    a[10][3] = 5.18637242884406370830023853209;
    a[10][4] = 1.09143734899672957818500254654;
    a[10][5] = -8.14978701074692612513997267357;
    a[10][6] = -1.85200656599969598641566180701e1;
    a[10][7] = 2.27394870993505042818970056734e1;
    a[10][8] = 2.49360555267965238987089396762;
    a[10][9] = -3.0467644718982195003823669022;

    a[11][0] = 2.27331014751653820792359768449;
    a[11][3] = -1.05344954667372501984066689879e1;
    a[11][4] = -2.00087205822486249909675718444;
    a[11][5] = -1.79589318631187989172765950534e1;
    a[11][6] = 2.79488845294199600508499808837e1;
    a[11][7] = -2.85899827713502369474065508674;
    a[11][8] = -8.87285693353062954433549289258;
    a[11][9] = 1.23605671757943030647266201528e1;
    a[11][10] = 6.43392746015763530355970484046e-1;

    // b: the 8th-order solution
    a[12][0] = 5.42937341165687622380535766363e-2;
    a[12][5] = 4.45031289275240888144113950566;
    a[12][6] = 1.89151789931450038304281599044;
    a[12][7] = -5.8012039600105847814672114227;
    a[12][8] = 3.1116436695781989440891606237e-1;
    a[12][9] = -1.52160949662516078556178806805e-1;
    a[12][10] = 2.01365400804030348374776537501e-1;
    a[12][11] = 4.47106157277725905176885569043e-2;

    a[13][0] = 5.61675022830479523392909219681e-2;
    a[13][6] = 2.53500210216624811088794765333e-1;
    a[13][7] = -2.46239037470802489917441475441e-1;
    a[13][8] = -1.24191423263816360469010140626e-1;
    a[13][9] = 1.5329179827876569731206322685e-1;
    a[13][10] = 8.20105229563468988491666602057e-3;
    a[13][11] = 7.56789766054569976138603589584e-3;
    a[13][12] = -8.298e-3;

    a[14][0] = 3.18346481635021405060768473261e-2;
    a[14][5] = 2.83009096723667755288322961402e-2;
    a[14][6] = 5.35419883074385676223797384372e-2;
    a[14][7] = -5.49237485713909884646569340306e-2;
    a[14][10] = -1.08347328697249322858509316994e-4;
    a[14][11] = 3.82571090835658412954920192323e-4;
    a[14][12] = -3.40465008687404560802977114492e-4;
    a[14][13] = 1.41312443674632500278074618366e-1;

    a[15][0] = -4.28896301583791923408573538692e-1;
    a[15][5] = -4.69762141536116384314449447206;
    a[15][6] = 7.68342119606259904184240953878;
    a[15][7] = 4.06898981839711007970213554331;
    a[15][8] = 3.56727187455281109270669543021e-1;
    a[15][12] = -1.39902416515901462129418009734e-3;
    a[15][13] = 2.9475147891527723389556272149;
    a[15][14] = -9.15095847217987001081870187138;
    a
};

/// b - bhh: the 3rd-order error estimator (bhh_1, bhh_9, bhh_12 of Hairer).
const E3: [f64; 12] = {
    let mut e = [0.0; 12];
    let mut j = 0;
    while j < 12 {
        e[j] = A[12][j];
        j += 1;
    }
    e[0] -= 0.244094488188976377952755905512;
    e[8] -= 0.733846688281611857341361741547;
    e[11] -= 0.220588235294117647058823529412e-1;
    e
};

/// The 5th-order error estimator (er_1, er_6 .. er_12 of Hairer).
const E5: [f64; 12] = [
    0.1312004499419488073250102996e-1,
    0.0,
    0.0,
    0.0,
    0.0,
    -0.1225156446376204440720569753e1,
    -0.4957589496572501915214079952,
    0.1664377182454986536961530415e1,
    -0.3503288487499736816886487290,
    0.3341791187130174790297318841,
    0.8192320648511571246570742613e-1,
    -0.2235530786388629525884427845e-1,
];

/// The dense-output coefficients d_{4..7, j} over the 16 stages (stage 13 is f at the new
/// point; stages 14 .. 16 are the extra ones).
const DC: [[f64; 16]; 4] = [
    [
        -0.84289382761090128651353491142e1,
        0.0,
        0.0,
        0.0,
        0.0,
        0.56671495351937776962531783590,
        -0.30689499459498916912797304727e1,
        0.23846676565120698287728149680e1,
        0.21170345824450282767155149946e1,
        -0.87139158377797299206789907490,
        0.22404374302607882758541771650e1,
        0.63157877876946881815570249290,
        -0.88990336451333310820698117400e-1,
        0.18148505520854727256656404962e2,
        -0.91946323924783554000451984436e1,
        -0.44360363875948939664310572000e1,
    ],
    [
        0.10427508642579134603413151009e2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.24228349177525818288430175319e3,
        0.16520045171727028198505394887e3,
        -0.37454675472269020279518312152e3,
        -0.22113666853125306036270938578e2,
        0.77334326684722638389603898808e1,
        -0.30674084731089398182061213626e2,
        -0.93321305264302278729567221706e1,
        0.15697238121770843886131091075e2,
        -0.31139403219565177677282850411e2,
        -0.93529243588444783865713862664e1,
        0.35816841486394083752465898540e2,
    ],
    [
        0.19985053242002433820987653617e2,
        0.0,
        0.0,
        0.0,
        0.0,
        -0.38703730874935176555105901742e3,
        -0.18917813819516756882830838328e3,
        0.52780815920542364900561016686e3,
        -0.11573902539959630126141871134e2,
        0.68812326946963000169666922661e1,
        -0.10006050966910838403183860980e1,
        0.77771377980534432092869265740,
        -0.27782057523535084065932004339e1,
        -0.60196695231264120758267380846e2,
        0.84320405506677161018159903784e2,
        0.11992291136182789328035130030e2,
    ],
    [
        -0.25693933462703749003312586129e2,
        0.0,
        0.0,
        0.0,
        0.0,
        -0.15418974869023643374053993627e3,
        -0.23152937917604549567536039109e3,
        0.35763911791061412378285349910e3,
        0.93405324183624310003907691704e2,
        -0.37458323136451633156875139351e2,
        0.10409964950896230045147246184e3,
        0.29840293426660503123344363579e2,
        -0.43533456590011143754432175058e2,
        0.96324553959188282948394950600e2,
        -0.39177261675615439165231486172e2,
        -0.14972683625798562581422125276e3,
    ],
];

/// The stages of one step: k[0] = f(t, y) (given), k[1..12] computed, k[12] = f(t_new, y_new)
/// once accepted, k[13..16] the extra stages of the dense output.
pub(crate) type Stages<const D: usize> = [SVector<f64, D>; 16];

/// sum_{j < n} w_j k_j, skipping zero weights (the tableau is sparse; with constant rows the
/// compiler resolves the test).
#[inline(always)]
fn combine<const D: usize>(w: &[f64], k: &Stages<D>, n: usize) -> SVector<f64, D> {
    let mut s = SVector::<f64, D>::zeros();
    for j in 0..n {
        if w[j] != 0.0 {
            s += k[j] * w[j];
        }
    }
    s
}

/// Stages 2 ..= 12 from k[0] = f(t, y) and the 8th-order solution at t + hs.
#[inline]
pub(crate) fn attempt<const D: usize>(
    f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    t: f64,
    y: &SVector<f64, D>,
    k: &mut Stages<D>,
    hs: f64,
) -> Result<SVector<f64, D>> {
    for i in 1..12 {
        let yi = y + combine(&A[i], k, i) * hs;
        k[i] = f(t + C[i] * hs, &yi)?;
    }
    Ok(y + combine(&A[12], k, 12) * hs)
}

/// Hairer's error norm of DOP853: err5^2 / sqrt(err5^2 + 0.01 err3^2) (RMS over components,
/// both estimators scaled by atol + rtol max(|y|, |y_new|)) times |h|; <= 1 accepts the step.
pub(crate) fn error_norm<const D: usize>(
    k: &Stages<D>,
    y: &SVector<f64, D>,
    y_new: &SVector<f64, D>,
    hs: f64,
    rtol: f64,
    atol: f64,
) -> f64 {
    let e5 = combine(&E5, k, 12);
    let e3 = combine(&E3, k, 12);
    let (mut s5, mut s3) = (0.0, 0.0);
    for i in 0..D {
        let sc = atol + rtol * y[i].abs().max(y_new[i].abs());
        s5 += (e5[i] / sc).powi(2);
        s3 += (e3[i] / sc).powi(2);
    }
    let deno = s5 + 0.01 * s3;
    if deno <= 0.0 {
        return 0.0;
    }
    hs.abs() * s5 / (deno * D.max(1) as f64).sqrt()
}

/// The coefficients of the continuous extension on the accepted step [t, t + hs], with
/// k[12] = f(t + hs, y_new) already set. With `order7` the 3 extra stages are evaluated and the
/// extension has order 7; without, the last four coefficients are zero and the extension is the
/// cubic Hermite interpolant of (y, f) at both ends (exact values at the step points).
pub(crate) fn dense<const D: usize>(
    f: &mut impl FnMut(f64, &SVector<f64, D>) -> Result<SVector<f64, D>>,
    t: f64,
    y: &SVector<f64, D>,
    y_new: &SVector<f64, D>,
    k: &mut Stages<D>,
    hs: f64,
    order7: bool,
) -> Result<[SVector<f64, D>; 8]> {
    let ydiff = y_new - y;
    let bspl = k[0] * hs - ydiff;
    let mut c = [SVector::<f64, D>::zeros(); 8];
    c[0] = *y;
    c[1] = ydiff;
    c[2] = bspl;
    c[3] = ydiff - k[12] * hs - bspl;
    if order7 {
        for i in 13..16 {
            let yi = y + combine(&A[i], k, i) * hs;
            k[i] = f(t + C[i] * hs, &yi)?;
        }
        for (r, d) in DC.iter().enumerate() {
            c[4 + r] = combine(d, k, 16) * hs;
        }
    }
    Ok(c)
}

/// Evaluate the continuous extension at theta in [0, 1] (Hairer's `CONTD8`).
#[inline]
pub(crate) fn interpolate<const D: usize>(c: &[SVector<f64, D>; 8], s: f64) -> SVector<f64, D> {
    let s1 = 1.0 - s;
    let conpar = c[4] + (c[5] + (c[6] + c[7] * s) * s1) * s;
    c[0] + (c[1] + (c[2] + (c[3] + conpar * s1) * s) * s1) * s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Consistency of the tableau: row sums equal the nodes, the weights sum to 1, and the
    /// error estimators annihilate constants (sum of weights 0).
    #[test]
    fn tableau_row_sums() {
        for i in 1..16 {
            let s: f64 = A[i].iter().sum();
            let c = if i == 12 { 1.0 } else { C[i] };
            assert!((s - c).abs() < 1e-14, "row {i}: {s} vs {c}");
        }
        assert!(E3.iter().sum::<f64>().abs() < 1e-14);
        assert!(E5.iter().sum::<f64>().abs() < 1e-14);
        // b_j c_j^(q-1) sums to 1/q for q = 1 ..= 8 (the quadrature conditions of order 8).
        for q in 1..=8 {
            let s: f64 = (0..12).map(|j| A[12][j] * C[j].powi(q - 1)).sum();
            assert!((s - 1.0 / q as f64).abs() < 1e-13, "q = {q}: {s}");
        }
    }
}
