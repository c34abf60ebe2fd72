# Copyright (c) rsitr_mm contributors. All rights reserved.
from .contrastive_loss import MultiPositiveInfoNCELoss
from .triplet_loss import TripletRankingLoss, hinge_triplet_costs
from .semantic_triplet_loss import SemanticGuidedTripletLoss

__all__ = ['MultiPositiveInfoNCELoss', 'TripletRankingLoss', 'hinge_triplet_costs',
           'SemanticGuidedTripletLoss']
